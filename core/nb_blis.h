/* nb_blis.h — the one place that includes BLIS (private to the library).
 * Debian ships blis.h in a per-variant folder; meson finds it and defines
 * NB_BLIS_HEADER when the plain name is not on the include path. */
#ifndef NB_BLIS_H
#define NB_BLIS_H
#include <blis.h>
#endif
