/* errors.c - mqim_strerror() and mqim_errname() from the one error list in
 * include/mqim.h.  Shared by the plugin, libmqim and the tools. */
#include "mqim.h"

MQIM_EXPORT const char *mqim_strerror(int err)
{
	switch (err) {
#define MQIM_X_MSG(name, value, msg) case value: return msg;
	MQIM_ERRNO_MAP(MQIM_X_MSG)
#undef MQIM_X_MSG
	}
	return "unknown error";
}

MQIM_EXPORT const char *mqim_errname(int err)
{
	switch (err) {
#define MQIM_X_NAME(name, value, msg) case value: return #name;
	MQIM_ERRNO_MAP(MQIM_X_NAME)
#undef MQIM_X_NAME
	}
	return "EUNKNOWN";
}
