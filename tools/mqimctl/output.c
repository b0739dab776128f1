/* output.c - what mqimctl prints, and the exit status it follows from.
 *
 * Owns the human wording of every command's outcome (out_fmt[], indexed by
 * the wire command id) and the --json form: one object
 * {"responses": [...]} on stdout, the shape of $CONTROL/mqim/v1/response.
 * Results go to stdout, refusals to stderr.  Never prints a password except
 * one made up by --generate, once, after it was stored.
 */
#include <stdio.h>
#include <string.h>

#include "mqimctl.h"

static void show_user(const cJSON *data);
static void show_users(const cJSON *data);
static void show_groups(const cJSON *data);
static void show_group(const cJSON *data);

/* {u} is the username, {g} the group, {a} "now" or "no longer". */
static const struct out_fmt {
	const char *done;                 /* NULL: show() prints the data */
	const char *what;                 /* for "cannot <what>: <error>" */
	void (*show)(const cJSON *data);
} out_fmt[MQIM_CMD__COUNT] = {
	[MQIM_CMD_CREATE_USER]         = { "created user {u}", "create user {u}", NULL },
	[MQIM_CMD_DELETE_USER]         = { "deleted user {u}", "delete user {u}", NULL },
	[MQIM_CMD_SET_USER_PASSWORD]   = { "changed the password of {u}",
					   "change the password of {u}", NULL },
	[MQIM_CMD_GET_USER]            = { NULL, "show user {u}", show_user },
	[MQIM_CMD_LIST_USERS]          = { NULL, "list users", show_users },
	[MQIM_CMD_SET_ADMIN]           = { "{u} is {a} an admin", "change the admin flag of {u}",
					   NULL },
	[MQIM_CMD_DISABLE_USER]        = { "disabled user {u}", "disable user {u}", NULL },
	[MQIM_CMD_ENABLE_USER]         = { "enabled user {u}", "enable user {u}", NULL },
	[MQIM_CMD_CREATE_GROUP]        = { "created group {g}", "create group {g}", NULL },
	[MQIM_CMD_DELETE_GROUP]        = { "deleted group {g}", "delete group {g}", NULL },
	[MQIM_CMD_LIST_GROUPS]         = { NULL, "list groups", show_groups },
	[MQIM_CMD_GET_GROUP]           = { NULL, "show group {g}", show_group },
	[MQIM_CMD_ADD_GROUP_MEMBER]    = { "added {u} to group {g}", "add {u} to group {g}", NULL },
	[MQIM_CMD_REMOVE_GROUP_MEMBER] = { "removed {u} from group {g}",
					   "remove {u} from group {g}", NULL },
	[MQIM_CMD_KICK_USER]           = { "kicked {u}: its sessions are being disconnected",
					   "kick {u}", NULL },
};

static const char *jstr(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	return cJSON_IsString(v) ? v->valuestring : "";
}

static const char *yes_no(const cJSON *o, const char *key)
{
	return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, key)) ? "yes" : "no";
}

/* Expand the placeholders of fmt for the request command cmd. */
static void expand(char *out, size_t len, const char *fmt, const cJSON *cmd)
{
	size_t n = 0;

	for (const char *p = fmt; *p && n + 1 < len; p++) {
		const char *sub = NULL;
		if (p[0] == '{' && p[1] && p[2] == '}') {
			sub = p[1] == 'u' ? jstr(cmd, "username")
			    : p[1] == 'g' ? jstr(cmd, "group")
			    : p[1] == 'a' ? (cJSON_IsTrue(cJSON_GetObjectItem(cmd, "admin"))
					     ? "now" : "no longer")
			    : NULL;
		}
		if (sub) {
			n += (size_t)snprintf(out + n, len - n, "%s", sub);
			if (n >= len)
				n = len - 1;
			p += 2;
		} else {
			out[n++] = *p;
		}
	}
	out[n] = '\0';
}

/* "a, b, c", or "-" for an empty or missing array. */
static void print_list(const cJSON *arr)
{
	const cJSON *e;
	bool first = true;

	cJSON_ArrayForEach(e, arr) {
		if (cJSON_IsString(e)) {
			printf("%s%s", first ? "" : ", ", e->valuestring);
			first = false;
		}
	}
	printf("%s\n", first ? "-" : "");
}

static void show_user(const cJSON *d)
{
	printf("user      %s\n", jstr(d, "username"));
	printf("admin     %s\n", yes_no(d, "admin"));
	printf("disabled  %s\n", yes_no(d, "disabled"));
	printf("groups    ");
	print_list(cJSON_GetObjectItemCaseSensitive(d, "groups"));
}

static void show_users(const cJSON *d)
{
	const cJSON *users = cJSON_GetObjectItemCaseSensitive(d, "users"), *u;
	int width = 4;

	cJSON_ArrayForEach(u, users) {
		int len = (int)strlen(jstr(u, "username"));
		width = len > width ? len : width;
	}
	if (cJSON_GetArraySize(users) == 0) {
		printf("(no users)\n");
		return;
	}
	printf("%-*s  ADMIN  DISABLED\n", width, "USER");
	cJSON_ArrayForEach(u, users)
		printf("%-*s  %-5s  %s\n", width, jstr(u, "username"), yes_no(u, "admin"),
		       yes_no(u, "disabled"));
}

static void show_groups(const cJSON *d)
{
	const cJSON *groups = cJSON_GetObjectItemCaseSensitive(d, "groups"), *g;

	if (cJSON_GetArraySize(groups) == 0)
		printf("(no groups)\n");
	cJSON_ArrayForEach(g, groups)
		if (cJSON_IsString(g))
			printf("%s\n", g->valuestring);
}

static void show_group(const cJSON *d)
{
	printf("group    %s\n", jstr(d, "group"));
	printf("members  ");
	print_list(cJSON_GetObjectItemCaseSensitive(d, "members"));
}

/* Print one outcome; returns true when it succeeded. */
static bool print_one(const cJSON *cmd, const cJSON *resp, bool quiet)
{
	const struct mqim_cmd_def *def = mqim_cmd_lookup(jstr(cmd, "command"));
	const cJSON *err = cJSON_GetObjectItemCaseSensitive(resp, "error");
	const struct out_fmt *f = def ? &out_fmt[def->id] : NULL;
	char line[512];

	if (!f) {
		fprintf(stderr, "mqimctl: unexpected command in the request\n");
		return false;
	}
	if (err) {
		expand(line, sizeof(line), f->what, cmd);
		fprintf(stderr, "mqimctl: cannot %s: %s\n", line,
			cJSON_IsString(err) ? err->valuestring : "refused");
		return false;
	}
	if (quiet)
		return true;
	if (f->show) {
		f->show(cJSON_GetObjectItemCaseSensitive(resp, "data"));
	} else {
		expand(line, sizeof(line), f->done, cmd);
		printf("%s\n", line);
	}
	return true;
}

static void print_import_summary(const cJSON *commands, const cJSON *responses, int ok)
{
	int total = cJSON_GetArraySize(commands), kept = 0, i = 0;
	const cJSON *cmd;

	cJSON_ArrayForEach(cmd, commands) {
		const cJSON *r = cJSON_GetArrayItem(responses, i++);
		if (cJSON_GetObjectItem(cmd, "passwordHash") && !cJSON_GetObjectItem(r, "error"))
			kept++;
	}
	if (ok == total)
		printf("imported %d user%s", ok, ok == 1 ? "" : "s");
	else
		printf("imported %d of %d users", ok, total);
	if (kept)
		printf(" (%d with the password hash kept as it was)", kept);
	if (ok != total)
		printf("; %d refused (see above)", total - ok);
	printf("\n");
}

static int print_json(const cJSON *responses, const char *generated)
{
	cJSON *o = cJSON_CreateObject();
	char *text = NULL;

	if (o && cJSON_AddItemReferenceToObject(o, "responses", (cJSON *)responses) &&
	    (!generated || cJSON_AddStringToObject(o, "generatedPassword", generated)))
		text = cJSON_PrintUnformatted(o);
	if (text)
		printf("%s\n", text);
	else
		fprintf(stderr, "mqimctl: out of memory\n");
	if (text && generated)
		ctl_wipe(text, strlen(text));
	cJSON_free(text);
	cJSON_Delete(o);
	return text ? CTL_OK : CTL_REFUSED;
}

int ctl_print(const struct ctl *c, const cJSON *commands, const cJSON *responses,
	      const char *user, const char *generated)
{
	bool import = c->cmd->kind == CK_IMPORT, init = c->cmd->kind == CK_INIT;
	int n = cJSON_GetArraySize(commands), ok = 0;

	if (cJSON_GetArraySize(responses) != n) {
		fprintf(stderr, "mqimctl: got %d answers for %d commands\n",
			cJSON_GetArraySize(responses), n);
		return CTL_REFUSED;
	}
	for (int i = 0; i < n; i++) {
		const cJSON *r = cJSON_GetArrayItem(responses, i);
		if (c->json)
			ok += cJSON_GetObjectItem(r, "error") == NULL;
		else
			ok += print_one(cJSON_GetArrayItem(commands, i), r, import || init);
	}
	if (ok != n)
		generated = NULL;          /* nothing was stored: do not show it */
	if (c->json && print_json(responses, generated) != CTL_OK)
		return CTL_REFUSED;
	if (!c->json && import)
		print_import_summary(commands, responses, ok);
	if (!c->json && init && ok == n)
		printf("created store %s with admin %s\n", c->db, user);
	if (!c->json && generated)
		printf("password of %s: %s\n(shown once: it is stored only as a hash)\n",
		       user, generated);
	return ok == n ? CTL_OK : CTL_REFUSED;
}
