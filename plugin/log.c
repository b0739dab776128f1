/* log.c - the plugin's refusal log: one line per refusal, naming the
 * client, the user and the reason, never a password or a payload. */
#include <stdio.h>

#include <mosquitto.h>
#include <mosquitto_broker.h>

#include "plugin.h"

const char *mqim__clean(const char *s, char *dst, size_t n)
{
	size_t i = 0;
	if (!s)
		s = "(none)";
	for (; s[i] && i + 1 < n; i++) {
		unsigned char c = (unsigned char)s[i];
		dst[i] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
	}
	dst[i] = '\0';
	if (s[i] && n > 4) /* truncated: say so */
		dst[n - 4] = dst[n - 3] = dst[n - 2] = '.';
	return dst;
}

void mqim__deny(const struct mosquitto *client, const char *what, const char *topic,
		const char *reason)
{
	char id[96], user[80], t[128];
	mqim__clean(client ? mosquitto_client_id(client) : NULL, id, sizeof(id));
	mqim__clean(client ? mosquitto_client_username(client) : NULL, user, sizeof(user));
	if (topic)
		mosquitto_log_printf(MOSQ_LOG_NOTICE, "mqim: denied %s '%s' client=%s user=%s: %s",
				     what, mqim__clean(topic, t, sizeof(t)), id, user, reason);
	else
		mosquitto_log_printf(MOSQ_LOG_NOTICE, "mqim: denied %s client=%s user=%s: %s",
				     what, id, user, reason);
}
