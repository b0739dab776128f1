/* tick.c - periodic work and reloads: MOSQ_EVT_TICK, MOSQ_EVT_RELOAD.
 *
 * The tick runs the side effects that must not happen inside the callback
 * that asked for them (closing a user's connections) and ages the
 * de-duplication window in small slices, so no single tick stalls the loop.
 * A reload (SIGHUP) re-reads users and groups from the store; a failed
 * reload keeps the tables that were loaded before.
 */
#include <mosquitto.h>
#include <mosquitto_broker.h>

#include "plugin.h"

#define EXPIRE_SLICE 4096u

int mqim__on_tick(int event, void *event_data, void *userdata)
{
	struct mqim_ctx *ctx = userdata;
	mqim__kicks_run(ctx);
	mqim__sessions_expire(ctx, time(NULL));
	mqim_dedup_expire(ctx->dedup, mqim__now_ms(), EXPIRE_SLICE);
	return MOSQ_ERR_SUCCESS;
}

int mqim__on_reload(int event, void *event_data, void *userdata)
{
	mqim__users_load(userdata, true);
	return MOSQ_ERR_SUCCESS; /* an error here would only make the broker log it twice */
}
