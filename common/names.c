/* names.c - user, group and client id rules; see names.h. */
#include <string.h>

#include "names.h"

static bool name_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
}

static bool name_first(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

bool mqim_name_valid_n(const char *s, size_t len)
{
	if (!s || len == 0 || len > MQIM_NAME_MAX || !name_first((unsigned char)s[0]))
		return false;
	for (size_t i = 1; i < len; i++)
		if (!name_char((unsigned char)s[i]))
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
