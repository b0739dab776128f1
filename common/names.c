/* names.c - user, group and client id rules; see names.h. */
#include <string.h>

#include "names.h"

/* Per byte: 1 when it may appear in a name, 3 when it may also start one. */
static const unsigned char name_class[256] = {
	['0' ... '9'] = 3, ['A' ... 'Z'] = 3, ['a' ... 'z'] = 3,
	['_'] = 1, ['.'] = 1, ['-'] = 1,
};

bool mqim_name_valid_n(const char *s, size_t len)
{
	const unsigned char *u = (const unsigned char *)s;
	if (!s || len == 0 || len > MQIM_NAME_MAX || !(name_class[u[0]] & 2))
		return false;
	for (size_t i = 1; i < len; i++)
		if (!name_class[u[i]])
			return false;
	return true;
}

bool mqim_name_valid(const char *s)
{
	if (!s)
		return false;
	size_t len = strnlen(s, MQIM_NAME_MAX + 1);
	return mqim_name_valid_n(s, len);
}

bool mqim_clientid_allowed(const char *client_id, const char *user)
{
	if (!client_id || !mqim_name_valid(user))
		return false;
	size_t ulen = strlen(user);
	if (strncmp(client_id, user, ulen) != 0)
		return false;
	if (client_id[ulen] == '\0')
		return true;
	return client_id[ulen] == '/' && client_id[ulen + 1] != '\0';
}
