/* lru.c - a small least-recently-used mapping.
 *
 * Keys are kept in a list in use order (oldest first) next to a dict that
 * holds the values.  The cache is meant to hold a few hundred entries, so
 * a linear scan of the key list is fine.
 */
#include "lru.h"
#include "structmember.h"

#include <stdio.h>

/* Position of key in self->items, -1 if absent, -2 on error. */
static Py_ssize_t
lru_index(LRUObject *self, PyObject *key)
{
    Py_ssize_t i, n = PyList_GET_SIZE(self->items);

    for (i = 0; i < n; i++) {
        PyObject *k = PyList_GET_ITEM(self->items, i);
        int eq = PyObject_RichCompareBool(k, key, Py_EQ);
        if (eq < 0)
            return -2;
        if (eq)
            return i;
    }
    return -1;
}

static PyObject *
LRU_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"maxsize", NULL};
    Py_ssize_t maxsize = SPAM_DEFAULT_MAXSIZE;
    LRUObject *self;

    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|n:LRU", kwlist, &maxsize))
        return NULL;
    if (maxsize <= 0) {
        PyErr_SetString(PyExc_ValueError, "maxsize must be positive");
        return NULL;
    }
    self = (LRUObject *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    self->maxsize = maxsize;
    self->items = PyList_New(0);
    self->table = PyDict_New();
    if (self->items == NULL || self->table == NULL) {
        Py_DECREF(self);
        return NULL;
    }
    return (PyObject *)self;
}

static int
LRU_traverse(LRUObject *self, visitproc visit, void *arg)
{
    Py_VISIT(self->items);
    Py_VISIT(self->table);
    return 0;
}

static int
LRU_clear(LRUObject *self)
{
    Py_CLEAR(self->items);
    Py_CLEAR(self->table);
    return 0;
}

static void
LRU_dealloc(LRUObject *self)
{
    PyObject_GC_UnTrack(self);
    LRU_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
LRU_get(LRUObject *self, PyObject *args)
{
    PyObject *key, *dflt = Py_None, *value;
    Py_ssize_t i;

    if (!PyArg_ParseTuple(args, "O|O:get", &key, &dflt))
        return NULL;
    value = PyDict_GetItemWithError(self->table, key);
    if (value == NULL) {
        if (PyErr_Occurred())
            return NULL;
        self->misses++;
        Py_INCREF(dflt);
        return dflt;
    }
    Py_INCREF(value);
    self->hits++;

    /* move the key to the most-recently-used end */
    i = lru_index(self, key);
    if (i == -2 || (i >= 0 && (PySequence_DelItem(self->items, i) < 0 ||
                               PyList_Append(self->items, key) < 0))) {
        Py_DECREF(value);
        return NULL;
    }
    return value;
}

static PyObject *
LRU_put(LRUObject *self, PyObject *args)
{
    PyObject *key, *value, *oldest = NULL;
    int rc;

    if (!PyArg_ParseTuple(args, "OO:put", &key, &value))
        return NULL;

    Py_BEGIN_CRITICAL_SECTION(self);
    rc = PyDict_Contains(self->table, key);
    if (rc == 0)
        rc = PyList_Append(self->items, key);
    if (rc >= 0)
        rc = PyDict_SetItem(self->table, key, value);
    if (rc >= 0 && PyList_GET_SIZE(self->items) > self->maxsize) {
        oldest = PySequence_GetItem(self->items, 0);
        if (oldest == NULL || PySequence_DelItem(self->items, 0) < 0 ||
            PyDict_DelItem(self->table, oldest) < 0)
            rc = -1;
    }
    Py_END_CRITICAL_SECTION();

    Py_XDECREF(oldest);
    if (rc < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *
LRU_keys(LRUObject *self, PyObject *Py_UNUSED(ignored))
{
    return PyList_GetSlice(self->items, 0, PY_SSIZE_T_MAX);
}

/* A list of (key, value) pairs, oldest first in dict order. */
static PyObject *
LRU_snapshot(LRUObject *self, PyObject *Py_UNUSED(ignored))
{
    PyObject *result, *k, *v;
    Py_ssize_t pos = 0, i = 0;

    Py_BEGIN_CRITICAL_SECTION(self->table);
    result = PyList_New(PyDict_GET_SIZE(self->table));
    while (result != NULL && PyDict_Next(self->table, &pos, &k, &v)) {
        PyObject *pair = PyTuple_Pack(2, k, v);
        if (pair == NULL) {
            Py_CLEAR(result);
            break;
        }
        PyList_SET_ITEM(result, i++, pair);
    }
    Py_END_CRITICAL_SECTION();
    return result;
}

/* Append "hits misses" to a log file and start counting again. */
static PyObject *
LRU_write_stats(LRUObject *self, PyObject *args)
{
    const char *path;
    FILE *fp;

    if (!PyArg_ParseTuple(args, "s:write_stats", &path))
        return NULL;

    Py_BEGIN_ALLOW_THREADS
    fp = fopen(path, "a");
    if (fp != NULL) {
        fprintf(fp, "%zd %zd\n", self->hits, self->misses);
        fclose(fp);
        self->hits = self->misses = 0;
    }
    Py_END_ALLOW_THREADS

    if (fp == NULL)
        return PyErr_SetFromErrnoWithFilename(PyExc_OSError, path);
    Py_RETURN_NONE;
}

static Py_ssize_t
LRU_length(LRUObject *self)
{
    return PyDict_Size(self->table);
}

static PyMethodDef LRU_methods[] = {
    {"get", (PyCFunction)LRU_get, METH_VARARGS,
     "get(key, default=None)\n\nReturn the cached value and mark it recently used."},
    {"put", (PyCFunction)LRU_put, METH_VARARGS,
     "put(key, value)\n\nStore a value, evicting the least recently used key if full."},
    {"keys", (PyCFunction)LRU_keys, METH_NOARGS, "Keys, least recently used first."},
    {"snapshot", (PyCFunction)LRU_snapshot, METH_NOARGS, "A list of (key, value) pairs."},
    {"write_stats", (PyCFunction)LRU_write_stats, METH_VARARGS,
     "write_stats(path)\n\nAppend 'hits misses' to path and reset both counters."},
    {NULL, NULL, 0, NULL}
};

static PyMemberDef LRU_members[] = {
    {"maxsize", T_PYSSIZET, offsetof(LRUObject, maxsize), READONLY, "Capacity."},
    {"hits", T_PYSSIZET, offsetof(LRUObject, hits), READONLY, "Number of hits."},
    {"misses", T_PYSSIZET, offsetof(LRUObject, misses), READONLY, "Number of misses."},
    {NULL, 0, 0, 0, NULL}
};

static PySequenceMethods LRU_as_sequence = {
    .sq_length = (lenfunc)LRU_length,
};

PyTypeObject LRU_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "spamcache._spam.LRU",
    .tp_doc = "LRU(maxsize=128)\n\nA mapping that forgets its least recently used keys.",
    .tp_basicsize = sizeof(LRUObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_new = LRU_new,
    .tp_dealloc = (destructor)LRU_dealloc,
    .tp_traverse = (traverseproc)LRU_traverse,
    .tp_clear = (inquiry)LRU_clear,
    .tp_methods = LRU_methods,
    .tp_members = LRU_members,
    .tp_as_sequence = &LRU_as_sequence,
};

int
spam_lru_add_type(PyObject *module)
{
    if (PyType_Ready(&LRU_Type) < 0)
        return -1;
    Py_INCREF(&LRU_Type);
    if (PyModule_AddObject(module, "LRU", (PyObject *)&LRU_Type) < 0) {
        Py_DECREF(&LRU_Type);
        return -1;
    }
    return 0;
}
