/* alloc.h - where the plugin's memory comes from.
 *
 * In the broker, from mosquitto_malloc() and friends, so the broker's memory
 * accounting ($SYS/broker/heap) includes the plugin and memory the broker
 * frees (a replaced payload) comes from the broker's allocator.  In unit
 * tests (MQIM_UNIT_TEST), from cmocka's checked allocator, so that every
 * unit test is also a leak test.  uthash is routed here too.
 */
#ifndef MQIM_PLUGIN_ALLOC_H
#define MQIM_PLUGIN_ALLOC_H

#include <stddef.h>

#ifdef MQIM_UNIT_TEST
#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>
#include <cmocka.h>
#define mqim__malloc(n)     test_malloc(n)
#define mqim__calloc(n, s)  test_calloc(n, s)
#define mqim__free(p)       test_free(p)
#else
#include <mosquitto_broker.h>
#define mqim__malloc(n)     mosquitto_malloc(n)
#define mqim__calloc(n, s)  mosquitto_calloc(n, s)
#define mqim__free(p)       mosquitto_free(p)
#endif

/* A copy of s from the same allocator; NULL when out of memory. */
static inline char *mqim__strdup(const char *s)
{
	size_t n = __builtin_strlen(s) + 1;
	char *p = mqim__malloc(n);
	if (p)
		__builtin_memcpy(p, s, n);
	return p;
}

#define uthash_malloc(sz)    mqim__malloc(sz)
#define uthash_free(p, sz)   mqim__free(p)

#endif
