/* import.c - `mqimctl user import FILE`: accounts from CSV or Mosquitto
 * password files.
 *
 * Owns the reading of FILE.  Each line is "name,password" (CSV, the password
 * optionally quoted RFC 4180 style) or "name:$hash" (a Mosquitto password
 * file line).  Names cannot hold ',' or ':', so the first of them tells the
 * two apart.  The whole file is checked before anything is sent; a line we
 * cannot use stops the import with its number on stderr, and never with the
 * password in the message.  Line buffers are wiped before they are freed.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mqimctl.h"

struct src {
	const char *path;
	long lineno;
	int accounts;
	bool seen_content;     /* a header may only be the first content line */
};

static int line_error(const struct src *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int line_error(const struct src *s, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return ctl_input_error("%s:%ld: %s; nothing was imported", s->path, s->lineno, msg);
}

static char *trim(char *p)
{
	char *end;

	while (*p == ' ' || *p == '\t')
		p++;
	end = p + strlen(p);
	while (end > p && (end[-1] == ' ' || end[-1] == '\t'))
		*--end = '\0';
	return p;
}

/* Unquote a CSV field in place: "a""b" -> a"b.  False when malformed. */
static bool csv_unquote(char *field)
{
	char *r = field + 1, *w = field;

	if (field[0] != '"')
		return true;
	for (;;) {
		if (*r == '\0')
			return false;                  /* no closing quote */
		if (*r == '"' && r[1] == '"') {
			*w++ = '"';
			r += 2;
		} else if (*r == '"') {
			r++;
			break;
		} else {
			*w++ = *r++;
		}
	}
	if (*r != '\0')
		return false;                          /* text after the closing quote */
	*w = '\0';
	return true;
}

static int add_account(const struct src *s, const char *name, const char *password,
		       const char *hash, cJSON *commands)
{
	cJSON *o = mqim_admin_build("createUser", name, NULL, password, -1);

	if (!o || (hash && !cJSON_AddStringToObject(o, "passwordHash", hash)) ||
	    !cJSON_AddItemToArray(commands, o)) {
		cJSON_Delete(o);
		return line_error(s, "out of memory");
	}
	return CTL_OK;
}

static int mosquitto_line(struct src *s, const char *name, char *rest, cJSON *commands)
{
	char *hash = trim(rest);
	int plen;

	if (!hash[0])
		return line_error(s, "no password hash for %s", name);
	if (hash[0] != '$')
		return line_error(s, "the password of %s is not hashed: give plain passwords as "
				  "CSV (%s,PASSWORD), or hash the file with mosquitto_passwd -U",
				  name, name);
	if (!mqim_passwd_format_supported(hash)) {
		plen = (int)strcspn(hash + 1, "$") + 2;
		char fmt[32];
		snprintf(fmt, sizeof(fmt), "%.*s", plen < 24 ? plen : 24, hash);
		return line_error(s, "the hash of %s (%s...) is one mqim cannot verify: it takes "
				  "Mosquitto's $7$ (PBKDF2-SHA512) and $6$ (SHA-512) hashes; drop "
				  "the line and set the password with `mqimctl user passwd`",
				  name, fmt);
	}
	return add_account(s, name, NULL, hash, commands);
}

static int csv_line(struct src *s, const char *name, char *password, cJSON *commands)
{
	size_t n;

	if (!csv_unquote(password))
		return line_error(s, "the password of %s has an unbalanced quote", name);
	n = strlen(password);
	if (n == 0)
		return line_error(s, "empty password for %s", name);
	if (n > MQIM_PASSWORD_MAX)
		return line_error(s, "the password of %s is longer than 1024 bytes", name);
	return add_account(s, name, password, NULL, commands);
}

static bool is_header(const char *name, const char *rest)
{
	return (strcasecmp(name, "name") == 0 || strcasecmp(name, "username") == 0 ||
		strcasecmp(name, "user") == 0) && strcasecmp(rest, "password") == 0;
}

static int import_line(struct src *s, char *line, cJSON *commands)
{
	char *p = trim(line), *sep, *name;
	bool first = !s->seen_content;

	if (*p == '\0' || *p == '#')
		return CTL_OK;
	s->seen_content = true;
	sep = p + strcspn(p, ",:");
	if (*sep == '\0')
		return line_error(s, "expected name,password or name:$hash");
	char kind = *sep;
	*sep = '\0';
	name = trim(p);
	if (kind == ',' && first && is_header(name, sep + 1))
		return CTL_OK;
	if (kind == ',' && name[0] == '"' && csv_unquote(name) == false)
		return line_error(s, "unbalanced quote in the name");
	if (!mqim_name_valid(name))
		return line_error(s, "invalid username '%.64s': use 1-64 of [A-Za-z0-9_.-], "
				  "starting with a letter or digit", name);
	s->accounts++;
	return kind == ':' ? mosquitto_line(s, name, sep + 1, commands)
			   : csv_line(s, name, sep + 1, commands);
}

int ctl_import_build(const char *path, cJSON *commands)
{
	struct src s = { .path = path };
	bool use_stdin = strcmp(path, "-") == 0;
	FILE *fp = use_stdin ? stdin : fopen(path, "r");
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	int rc = CTL_OK;

	if (!fp)
		return ctl_input_error("cannot read %s: %s", path, strerror(errno));
	while (rc == CTL_OK && (n = getline(&line, &cap, fp)) >= 0) {
		s.lineno++;
		while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
			line[--n] = '\0';
		rc = import_line(&s, line, commands);
	}
	if (rc == CTL_OK && ferror(fp))
		rc = ctl_input_error("cannot read %s: %s", path, strerror(errno));
	if (rc == CTL_OK && s.accounts == 0)
		rc = ctl_input_error("%s holds no accounts: expected name,password or "
				     "name:$hash lines", path);
	ctl_wipe(line, cap);
	free(line);
	if (!use_stdin)
		fclose(fp);
	return rc;
}
