/* commands.c - mqimctl's command table: the words an operator types, what
 * they take, their help, and the $CONTROL command each one becomes.
 *
 * Owns ctl_cmds[] and the building of simple requests from it.  The wire
 * names come from common/admin.c's table (mqim_admin_build refuses a name it
 * does not know), so the CLI and the plugin cannot drift apart.
 */
#include <string.h>
#include <strings.h>

#include "mqimctl.h"

#define PW_OPTS \
	"  --password-stdin  read the password from the first line of stdin\n" \
	"  --generate        make up a strong random password and print it once\n"
#define PW_PROMPT \
	"Without --password-stdin or --generate, mqimctl asks for it twice on the\n" \
	"terminal, with echo off.\n"

const struct ctl_cmd ctl_cmds[] = {
	{ "init", { CP_USER }, NULL, CK_INIT, CF_PASSWORD | CF_OFFLINE_ONLY, "ADMIN",
	  "create a new store with its first admin (offline only)",
	  "Create the store named by --db (mode 0600, with its parent folder already\n"
	  "there) and its first user, ADMIN, an admin.  The password comes from\n"
	  "--password-stdin, -P, $MQIM_PASSWORD, --generate or the prompt, in that\n"
	  "order.  A store that already holds users or groups is refused: init never\n"
	  "touches a store in use.\n\n"
	  "Options:\n" PW_OPTS
	  "  -P PASSWORD       the admin's password (visible to other local users in\n"
	  "                    the process list: prefer the other ways)\n",
	  "mqimctl --db /var/lib/mqim/mqim.db init admin --generate" },

	{ "user add", { CP_USER }, "createUser", CK_SIMPLE, CF_PASSWORD | CF_ADMIN, "NAME",
	  "create a user",
	  "Create user NAME (1-64 of [A-Za-z0-9_.-], starting with a letter or digit)\n"
	  "with a password, hashed with argon2id before it is stored.\n" PW_PROMPT "\n"
	  "Options:\n" PW_OPTS
	  "  --admin           make the user an admin at once\n",
	  "mqimctl --db mqim.db user add alice\n"
	  "  printf '%s\\n' \"$PW\" | mqimctl -h broker -u admin user add bob --password-stdin" },

	{ "user del", { CP_USER }, "deleteUser", CK_SIMPLE, 0, "NAME",
	  "delete a user and its group memberships",
	  "Delete user NAME and remove it from every group it belonged to.\n",
	  "mqimctl --db mqim.db user del alice" },

	{ "user passwd", { CP_USER }, "setUserPassword", CK_SIMPLE, CF_PASSWORD, "NAME",
	  "set a user's password",
	  "Replace the password of user NAME.\n" PW_PROMPT "\nOptions:\n" PW_OPTS,
	  "mqimctl -h broker -u admin user passwd alice" },

	{ "user list", { CP_NONE }, "listUsers", CK_SIMPLE, 0, "",
	  "list users with their admin and disabled flags",
	  "List every user, in name order, with its admin and disabled flags.\n",
	  "mqimctl --db mqim.db user list --json" },

	{ "user show", { CP_USER }, "getUser", CK_SIMPLE, 0, "NAME",
	  "show one user and its groups",
	  "Show user NAME: its admin and disabled flags and the groups it belongs to.\n"
	  "Never shows the password or its hash.\n",
	  "mqimctl --db mqim.db user show alice" },

	{ "user disable", { CP_USER }, "disableUser", CK_SIMPLE, 0, "NAME",
	  "refuse a user's logins, keeping the account",
	  "Mark user NAME disabled: its logins are refused (with the same answer as an\n"
	  "unknown user) while the account and its memberships stay.  To also close\n"
	  "the sessions it has online now, follow with `kick NAME`.\n",
	  "mqimctl -h broker -u admin user disable alice && mqimctl -h broker -u admin kick alice" },

	{ "user enable", { CP_USER }, "enableUser", CK_SIMPLE, 0, "NAME",
	  "allow a disabled user to log in again",
	  "Clear the disabled flag of user NAME.\n",
	  "mqimctl --db mqim.db user enable alice" },

	{ "user admin", { CP_USER, CP_ONOFF }, "setAdmin", CK_SIMPLE, 0, "NAME on|off",
	  "grant or revoke admin rights",
	  "Make user NAME an admin (on) or not (off).  Admins may publish to\n"
	  "$CONTROL/mqim/v1, read its responses and read $SYS.\n",
	  "mqimctl --db mqim.db user admin alice on" },

	{ "user import", { CP_FILE }, NULL, CK_IMPORT, 0, "FILE",
	  "create many users from a CSV or Mosquitto password file",
	  "Create one user per line of FILE (\"-\" reads stdin).  Each line is either\n"
	  "  name,password       CSV: the password is hashed with argon2id; it may be\n"
	  "                      quoted (\"pa,ss\" with \"\" for a quote); a first line\n"
	  "                      \"name,password\" or \"username,password\" is a header\n"
	  "  name:$7$...          a Mosquitto password file line: the hash is kept as\n"
	  "  name:$6$...          is ($7$ PBKDF2-SHA512 or $6$ salted SHA-512; PHC\n"
	  "                      $argon2id$/$argon2i$ strings too), so the users keep\n"
	  "                      their passwords\n"
	  "Blank lines and lines starting with # are skipped.  The whole file is\n"
	  "checked first: a bad name, an empty password or a hash mqim cannot verify\n"
	  "(crypt(3) $1$, $5$ or $2b$ hashes from other systems, for example)\n"
	  "refuses the import with the line named, and nothing is changed.  Then\n"
	  "every account is created, in one transaction offline, or in requests of up\n"
	  "to 64 commands online; an account that exists already is reported and the\n"
	  "others are still created.  A summary line ends the output.\n",
	  "mqimctl --db mqim.db user import /etc/mosquitto/passwd" },

	{ "group add", { CP_GROUP }, "createGroup", CK_SIMPLE, 0, "GID",
	  "create a group",
	  "Create group GID (same naming rule as users).  Members publish and\n"
	  "subscribe on im/g/GID.\n",
	  "mqimctl --db mqim.db group add team" },

	{ "group del", { CP_GROUP }, "deleteGroup", CK_SIMPLE, 0, "GID",
	  "delete a group and its memberships",
	  "Delete group GID; its members stop receiving im/g/GID at once.\n",
	  "mqimctl --db mqim.db group del team" },

	{ "group list", { CP_NONE }, "listGroups", CK_SIMPLE, 0, "",
	  "list groups",
	  "List every group, in name order.\n",
	  "mqimctl -h broker -u admin group list" },

	{ "group show", { CP_GROUP }, "getGroup", CK_SIMPLE, 0, "GID",
	  "show a group's members",
	  "Show group GID and its members, in name order.\n",
	  "mqimctl --db mqim.db group show team" },

	{ "group member add", { CP_GROUP, CP_USER }, "addGroupMember", CK_SIMPLE, 0, "GID USER",
	  "add a user to a group",
	  "Add user USER to group GID.  Both must exist.\n",
	  "mqimctl --db mqim.db group member add team alice" },

	{ "group member del", { CP_GROUP, CP_USER }, "removeGroupMember", CK_SIMPLE, 0, "GID USER",
	  "remove a user from a group",
	  "Remove user USER from group GID.  On a live broker the user stops\n"
	  "receiving im/g/GID at once, even on a subscription made earlier.\n",
	  "mqimctl -h broker -u admin group member del team alice" },

	{ "token issue", { CP_USER }, NULL, CK_TOKEN, CF_LOCAL, "USER",
	  "print an HS256 login token for a user (local, no store or broker)",
	  "Sign a JSON Web Token (HS256) that lets USER log in with the token as the\n"
	  "password, on a broker whose plugin_opt_jwt_secret_file holds the same\n"
	  "secret (docs/security.md).  Claims: sub = USER, iat = now, exp = now +\n"
	  "--ttl, aud (default \"mqim\") and, with --iss, iss.  Meant for operators and\n"
	  "tests; an app's own server normally signs its users' tokens.  The user must\n"
	  "exist and be enabled unless the broker has plugin_opt_jwt_auto_create.\n\n"
	  "Options:\n"
	  "  --secret-file FILE  the shared secret (required; mode 0600, a trailing\n"
	  "                      newline is ignored, as the broker reads it)\n"
	  "  --ttl SECONDS       lifetime of the token (default 3600)\n"
	  "  --aud AUDIENCE      the aud claim (default mqim, the broker's default\n"
	  "                      plugin_opt_jwt_audience)\n"
	  "  --iss ISSUER        an iss claim, for brokers with plugin_opt_jwt_issuer\n"
	  "  --json              print {\"token\", \"sub\", \"exp\"}\n",
	  "mqimctl token issue alice --ttl 600 --secret-file /etc/mqim/jwt.secret" },

	{ "kick", { CP_USER }, "kickUser", CK_SIMPLE, CF_ONLINE_ONLY, "USER",
	  "disconnect every session of a user (online only)",
	  "Disconnect every session USER has on the broker now.  The account is not\n"
	  "changed, so the user may log in again: `user disable` first to keep them\n"
	  "out.  Offline there is no session to kick, so this needs -h.\n",
	  "mqimctl -h broker -u admin kick alice" },
};

const size_t ctl_ncmds = sizeof(ctl_cmds) / sizeof(ctl_cmds[0]);

/* True when the space-separated words of pattern equal words[0..k), with k
 * the number of words in pattern, which must be <= n. */
static bool words_match(const char *pattern, char **words, int n, int *k)
{
	const char *p = pattern;

	*k = 0;
	while (*p) {
		size_t len = strcspn(p, " ");
		if (*k >= n || strlen(words[*k]) != len || strncmp(words[*k], p, len) != 0)
			return false;
		(*k)++;
		p += len;
		p += *p == ' ';
	}
	return true;
}

const struct ctl_cmd *ctl_cmd_find(char **words, int n, int *used)
{
	for (size_t i = 0; i < ctl_ncmds; i++)
		if (words_match(ctl_cmds[i].words, words, n, used))
			return &ctl_cmds[i];
	*used = 0;
	return NULL;
}

int ctl_cmd_nparams(const struct ctl_cmd *cmd)
{
	int n = 0;

	while (n < CTL_MAX_PARAMS && cmd->params[n] != CP_NONE)
		n++;
	return n;
}

static int parse_onoff(const char *s)
{
	static const struct { const char *word; int value; } words[] = {
		{ "on", 1 }, { "off", 0 }, { "true", 1 }, { "false", 0 },
		{ "yes", 1 }, { "no", 0 },
	};

	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		if (strcasecmp(s, words[i].word) == 0)
			return words[i].value;
	return -1;
}

int ctl_build_simple(const struct ctl *c, const char *password, cJSON *commands)
{
	const char *user = NULL, *group = NULL;
	int admin = c->admin ? 1 : -1;
	cJSON *o;

	for (int i = 0; i < c->nargs; i++) {
		switch (c->cmd->params[i]) {
		case CP_USER:
			user = c->args[i];
			break;
		case CP_GROUP:
			group = c->args[i];
			break;
		case CP_ONOFF:
			admin = parse_onoff(c->args[i]);
			if (admin < 0)
				return ctl_usage_error("%s takes on or off, not '%s'",
						       c->cmd->words, c->args[i]);
			break;
		default:
			break;
		}
	}
	o = mqim_admin_build(c->cmd->wire, user, group, password, admin);
	if (!o || !cJSON_AddItemToArray(commands, o)) {
		cJSON_Delete(o);
		return ctl_usage_error("out of memory");
	}
	return CTL_OK;
}

void ctl_command_wipe(cJSON *cmd)
{
	cJSON *pw = cmd ? cJSON_GetObjectItemCaseSensitive(cmd, "password") : NULL;

	if (cJSON_IsString(pw) && pw->valuestring)
		ctl_wipe(pw->valuestring, strlen(pw->valuestring));
}

void ctl_request_wipe(cJSON *commands)
{
	cJSON *cmd;

	cJSON_ArrayForEach(cmd, commands)
		ctl_command_wipe(cmd);
}
