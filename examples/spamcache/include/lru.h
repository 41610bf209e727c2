/* lru.h - the LRU cache type shared by spam.c and lru.c */
#ifndef SPAMCACHE_LRU_H
#define SPAMCACHE_LRU_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

/* Critical sections exist from 3.13 on.  Before that the GIL already
   serialises every method, so a plain block is enough. */
#if PY_VERSION_HEX < 0x030D0000
#  define Py_BEGIN_CRITICAL_SECTION(op) {
#  define Py_END_CRITICAL_SECTION() }
#endif

#define SPAM_DEFAULT_MAXSIZE 128

typedef struct {
    PyObject_HEAD
    PyObject *items;        /* list of keys, least recently used first */
    PyObject *table;        /* dict: key -> value */
    Py_ssize_t maxsize;
    Py_ssize_t hits;
    Py_ssize_t misses;
} LRUObject;

extern PyTypeObject LRU_Type;

/* Readies LRU_Type and adds it to the module; returns 0 or -1. */
int spam_lru_add_type(PyObject *module);

#endif /* SPAMCACHE_LRU_H */
