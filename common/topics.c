/* topics.c - classify topics and filters against the contract's table. */
#include <string.h>

#include "names.h"
#include "topics.h"

static bool has_prefix(const char *s, const char *prefix, size_t plen)
{
	return strncmp(s, prefix, plen) == 0;
}

/* "im/x/{name}" with a valid name and nothing after it. */
static bool im_name(const char *rest, struct mqim_topic *out)
{
	size_t len = strlen(rest);
	if (!mqim_name_valid_n(rest, len))
		return false;
	out->name = rest;
	out->name_len = len;
	return true;
}

enum mqim_topic_kind mqim_topic_classify(const char *topic, struct mqim_topic *out)
{
	struct mqim_topic t = { MQIM_TOPIC_NONE, NULL, 0, false, false };

	if (!topic) {
		/* nothing */
	} else if (topic[0] == 'i' && topic[1] == 'm' && topic[2] == '/' && topic[3] != '\0' &&
		   topic[4] == '/') {
		switch (topic[3]) {
		case 'u': if (im_name(topic + 5, &t)) t.kind = MQIM_TOPIC_INBOX; break;
		case 'g': if (im_name(topic + 5, &t)) t.kind = MQIM_TOPIC_GROUP; break;
		case 'p': if (im_name(topic + 5, &t)) t.kind = MQIM_TOPIC_PRESENCE; break;
		default: break;
		}
	} else if (topic[0] == '$') {
		if (!strcmp(topic, MQIM_CONTROL_TOPIC))
			t.kind = MQIM_TOPIC_CONTROL;
		else if (!strcmp(topic, MQIM_CONTROL_RESP_TOPIC))
			t.kind = MQIM_TOPIC_CONTROL_RESP;
		else if (!strcmp(topic, MQIM_PUSH_TOPIC))
			t.kind = MQIM_TOPIC_PUSH;
		else if (!strcmp(topic, "$SYS") || has_prefix(topic, "$SYS/", 5))
			t.kind = MQIM_TOPIC_SYS;
	}
	if (t.kind == MQIM_TOPIC_NONE)
		t.name = NULL, t.name_len = 0;
	if (out)
		*out = t;
	return t.kind;
}

enum mqim_topic_kind mqim_filter_classify(const char *filter, struct mqim_topic *out)
{
	struct mqim_topic t = { MQIM_TOPIC_NONE, NULL, 0, false, false };
	const char *f = filter;

	if (f && has_prefix(f, "$share/", 7)) {
		const char *slash = strchr(f + 7, '/');
		if (!slash || slash == f + 7) /* no share name, or no filter */
			goto done;
		t.shared = true;
		f = slash + 1;
	}
	if (!f || !*f)
		goto done;
	t.wildcard = strpbrk(f, "+#") != NULL;
	if (t.wildcard) {
		if (!strcmp(f, "$SYS/#") || has_prefix(f, "$SYS/", 5))
			t.kind = MQIM_TOPIC_SYS;
		goto done;
	}
	{
		bool shared = t.shared;
		mqim_topic_classify(f, &t);
		t.shared = shared;
		t.wildcard = false;
	}
done:
	if (out)
		*out = t;
	return t.kind;
}

const char *mqim_topic_kind_name(enum mqim_topic_kind kind)
{
	static const char *const names[] = {
		[MQIM_TOPIC_NONE] = "not an mqim topic",
		[MQIM_TOPIC_INBOX] = "inbox",
		[MQIM_TOPIC_GROUP] = "group",
		[MQIM_TOPIC_PRESENCE] = "presence",
		[MQIM_TOPIC_CONTROL] = "control",
		[MQIM_TOPIC_CONTROL_RESP] = "control response",
		[MQIM_TOPIC_PUSH] = "push notices",
		[MQIM_TOPIC_SYS] = "$SYS",
	};
	if ((unsigned)kind < sizeof(names) / sizeof(names[0]))
		return names[kind];
	return "?";
}
