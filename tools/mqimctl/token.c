/* token.c - `mqimctl token issue USER`: an HS256 login token for operators
 * and tests (docs/security.md, App-server tokens).
 *
 * Owns the reading of the shared secret file and the signing, with libjwt.
 * The claims are the ones the plugin checks: sub (the user), iat, exp,
 * aud (default "mqim") and, when asked, iss.  The secret is held only in a
 * buffer that is wiped before it is freed; the token is printed, which is
 * the point, and nothing else is.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jwt.h>

#include "mqimctl.h"

#define SECRET_MAX 4096

/* Read the secret like the plugin does: mode 0600 or stricter, at most
 * SECRET_MAX bytes, one trailing newline dropped. */
static int read_secret(const char *path, unsigned char *buf, size_t *len)
{
	struct stat sb;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return ctl_input_error("cannot read the secret file %s: %s", path, strerror(errno));
	if (fstat(fd, &sb) != 0 || (sb.st_mode & 077)) {
		close(fd);
		return ctl_input_error("the secret file %s is readable by group or others: "
				       "chmod 600 it (the broker refuses it too)", path);
	}
	n = read(fd, buf, SECRET_MAX + 1);
	close(fd);
	if (n < 0 || n > SECRET_MAX)
		return ctl_input_error("cannot use the secret file %s: %s", path,
				       n < 0 ? strerror(errno) : "larger than 4096 bytes");
	if (n > 0 && buf[n - 1] == '\n')
		n--;
	if (n == 0)
		return ctl_input_error("the secret file %s is empty", path);
	*len = (size_t)n;
	return CTL_OK;
}

static char *sign(const struct ctl *c, const char *user, const unsigned char *key,
		  size_t keylen, long now)
{
	jwt_t *j = NULL;
	char *token = NULL;

	if (jwt_new(&j) == 0 &&
	    jwt_add_grant(j, "sub", user) == 0 &&
	    jwt_add_grant_int(j, "iat", now) == 0 &&
	    jwt_add_grant_int(j, "exp", now + c->ttl) == 0 &&
	    jwt_add_grant(j, "aud", c->audience ? c->audience : "mqim") == 0 &&
	    (!c->issuer || jwt_add_grant(j, "iss", c->issuer) == 0) &&
	    jwt_set_alg(j, JWT_ALG_HS256, key, (int)keylen) == 0)
		token = jwt_encode_str(j);
	jwt_free(j);
	return token;
}

int ctl_token_issue(const struct ctl *c)
{
	unsigned char *key = malloc(SECRET_MAX + 1);
	const char *user = c->args[0];
	long now = (long)time(NULL);
	size_t keylen = 0;
	char *token = NULL;
	int rc;

	if (!key)
		return ctl_input_error("out of memory");
	rc = mqim_name_valid(user) ? CTL_OK
	     : ctl_input_error("invalid username '%s': use 1-64 of [A-Za-z0-9_.-], starting "
			       "with a letter or digit", user);
	if (rc == CTL_OK)
		rc = read_secret(c->secret_file, key, &keylen);
	if (rc == CTL_OK) {
		token = sign(c, user, key, keylen, now);
		if (!token)
			rc = ctl_input_error("could not sign the token");
	}
	if (token && c->json)
		printf("{\"token\":\"%s\",\"sub\":\"%s\",\"exp\":%ld}\n", token, user, now + c->ttl);
	else if (token)
		printf("%s\n", token);
	if (token) {
		ctl_wipe(token, strlen(token));
		free(token);
	}
	ctl_wipe(key, SECRET_MAX + 1);
	free(key);
	return rc;
}
