/* topics.h - the topic table of the wire contract (docs/protocol.md, Topics).
 *
 * Classifies a topic name, or a subscription filter, into one of the kinds
 * the contract knows.  Filters are compared literally: a filter with a
 * wildcard is never an im/ topic, and "$share/{name}/" is unwrapped first.
 * Pure functions: no allocation, no state, safe from any thread.  The name
 * in the result points into the caller's string (borrowed).
 */
#ifndef MQIM_TOPICS_H
#define MQIM_TOPICS_H

#include <stdbool.h>
#include <stddef.h>

#define MQIM_CONTROL_TOPIC      "$CONTROL/mqim/v1"
#define MQIM_CONTROL_RESP_TOPIC "$CONTROL/mqim/v1/response"
#define MQIM_PUSH_TOPIC         "$CONTROL/mqim/v1/push"
#define MQIM_INBOX_PREFIX       "im/u/"
#define MQIM_GROUP_PREFIX       "im/g/"
#define MQIM_PRESENCE_PREFIX    "im/p/"
/* MQTT 5 user property (value "1") on a resend whose receipt never came:
 * the plugin delivers it even inside the de-duplication window. */
#define MQIM_RESEND_PROP        "mqim-resend"

enum mqim_topic_kind {
	MQIM_TOPIC_NONE = 0,     /* not in the table: refused to everyone */
	MQIM_TOPIC_INBOX,        /* im/u/{user} */
	MQIM_TOPIC_GROUP,        /* im/g/{group} */
	MQIM_TOPIC_PRESENCE,     /* im/p/{user} */
	MQIM_TOPIC_CONTROL,      /* $CONTROL/mqim/v1 */
	MQIM_TOPIC_CONTROL_RESP, /* $CONTROL/mqim/v1/response */
	MQIM_TOPIC_PUSH,         /* $CONTROL/mqim/v1/push: push notices (docs/protocol.md) */
	MQIM_TOPIC_SYS,          /* $SYS, $SYS/..., wildcards allowed (admins) */
};

struct mqim_topic {
	enum mqim_topic_kind kind;
	const char *name;   /* user or group id for im/ kinds, else NULL */
	size_t name_len;
	bool shared;        /* filters only: was wrapped in $share/{x}/ */
	bool wildcard;      /* filters only: contains + or # */
};

/* Classify a topic name (no wildcards).  Returns the kind, also in *out. */
enum mqim_topic_kind mqim_topic_classify(const char *topic, struct mqim_topic *out);

/* Classify a subscription filter.  "$share/{x}/" is unwrapped; a filter with
 * a wildcard is MQIM_TOPIC_NONE unless it lies under $SYS. */
enum mqim_topic_kind mqim_filter_classify(const char *filter, struct mqim_topic *out);

/* Human-readable name of a kind, for logs. */
const char *mqim_topic_kind_name(enum mqim_topic_kind kind);

#endif
