/* core_internal.h — shared between core's own files; not installed. */
#ifndef NB_CORE_INTERNAL_H
#define NB_CORE_INTERNAL_H

#include <stdbool.h>

#include <nabla/nb_plugin.h>

extern bool nb__profiling;                                     /* nb_profile_enable */

void nb__profile_add(const nb_op *op, bool backward, double seconds);
void nb__pool_resize(void);                                    /* stop the workers (parallel.c) */

#endif
