/* gilaudit's stand-in for pythoncapi_compat.h, used only when a project includes the real
 * header but does not ship it (it is usually vendored or fetched at build time).  The prelude
 * already declares the 3.13/3.14 APIs and sets PY_VERSION_HEX to 3.14, where the real header
 * defines nothing either. */
#ifndef PYTHONCAPI_COMPAT
#define PYTHONCAPI_COMPAT
#endif
