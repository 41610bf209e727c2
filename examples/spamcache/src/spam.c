/* spam.c - module glue for spamcache._spam: configuration, small helpers,
 * and module initialisation.
 */
#include "lru.h"

#include <stdint.h>
#include <string.h>

/* Module-wide settings; created at import, updated by configure(). */
static PyObject *config = NULL;

/* json is only needed by dump_config(), so import it on first use. */
static PyObject *json_module = NULL;

/* Calls into the module, reported by counters() for debugging. */
static unsigned long call_count = 0;

static int
spam_verbose(void)
{
    PyObject *v = PyDict_GetItemString(config, "verbose");
    return v != NULL && PyObject_IsTrue(v) > 0;
}

static PyObject *
spam_configure(PyObject *module, PyObject *args, PyObject *kwargs)
{
    PyObject *maxsize;

    call_count++;
    if (PyTuple_GET_SIZE(args) != 0) {
        PyErr_SetString(PyExc_TypeError, "configure() takes keyword arguments only");
        return NULL;
    }
    if (kwargs == NULL)
        Py_RETURN_NONE;
    maxsize = PyDict_GetItemString(kwargs, "maxsize");
    if (maxsize != NULL && (!PyLong_Check(maxsize) || PyLong_AsSsize_t(maxsize) <= 0)) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_ValueError, "maxsize must be a positive int");
        return NULL;
    }
    if (PyDict_Update(config, kwargs) < 0)
        return NULL;
    if (spam_verbose())
        PySys_WriteStderr("spamcache: configuration updated\n");
    Py_RETURN_NONE;
}

static PyObject *
spam_get_option(PyObject *module, PyObject *args)
{
    PyObject *name, *dflt = Py_None, *value;

    call_count++;
    if (!PyArg_ParseTuple(args, "U|O:get_option", &name, &dflt))
        return NULL;
#if PY_VERSION_HEX >= 0x030D0000
    if (PyDict_GetItemRef(config, name, &value) < 0)
        return NULL;
#else
    value = PyDict_GetItemWithError(config, name);
    if (value == NULL && PyErr_Occurred())
        return NULL;
    Py_XINCREF(value);
#endif
    if (value == NULL) {
        Py_INCREF(dflt);
        return dflt;
    }
    return value;
}

static PyObject *
spam_dump_config(PyObject *module, PyObject *Py_UNUSED(ignored))
{
    if (json_module == NULL) {
        json_module = PyImport_ImportModule("json");
        if (json_module == NULL)
            return NULL;
    }
    return PyObject_CallMethod(json_module, "dumps", "O", config);
}

/* "key=value, key=value" in insertion order. */
static PyObject *
spam_config_summary(PyObject *module, PyObject *Py_UNUSED(ignored))
{
    PyObject *parts, *key, *value, *sep, *result = NULL;
    Py_ssize_t pos = 0;

    parts = PyList_New(0);
    if (parts == NULL)
        return NULL;
    while (PyDict_Next(config, &pos, &key, &value)) {
        PyObject *s = PyUnicode_FromFormat("%S=%R", key, value);
        if (s == NULL || PyList_Append(parts, s) < 0) {
            Py_XDECREF(s);
            Py_DECREF(parts);
            return NULL;
        }
        Py_DECREF(s);
    }
    sep = PyUnicode_FromString(", ");
    if (sep != NULL) {
        result = PyUnicode_Join(sep, parts);
        Py_DECREF(sep);
    }
    Py_DECREF(parts);
    return result;
}

/* parse_spec("maxsize=64,verbose=1") -> {"maxsize": "64", "verbose": "1"} */
static PyObject *
spam_parse_spec(PyObject *module, PyObject *args)
{
    const char *spec;
    Py_ssize_t len;
    char *copy, *tok;
    PyObject *result;

    if (!PyArg_ParseTuple(args, "s#:parse_spec", &spec, &len))
        return NULL;
    copy = PyMem_Malloc((size_t)len + 1);
    if (copy == NULL)
        return PyErr_NoMemory();
    memcpy(copy, spec, (size_t)len);
    copy[len] = '\0';

    result = PyDict_New();
    for (tok = strtok(copy, ","); result != NULL && tok != NULL; tok = strtok(NULL, ",")) {
        char *eq = strchr(tok, '=');
        PyObject *v;
        int rc;

        if (eq == NULL) {
            PyErr_Format(PyExc_ValueError, "missing '=' in '%s'", tok);
            Py_CLEAR(result);
            break;
        }
        *eq = '\0';
        v = PyUnicode_FromString(eq + 1);
        rc = v == NULL ? -1 : PyDict_SetItemString(result, tok, v);
        Py_XDECREF(v);
        if (rc < 0)
            Py_CLEAR(result);
    }
    PyMem_Free(copy);
    return result;
}

/* FNV-1a over any bytes-like object; the GIL is released while hashing. */
static PyObject *
spam_checksum(PyObject *module, PyObject *arg)
{
    Py_buffer view;
    const unsigned char *p;
    Py_ssize_t i;
    uint64_t h = 14695981039346656037ULL;

    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0)
        return NULL;
    Py_BEGIN_ALLOW_THREADS
    p = view.buf;
    for (i = 0; i < view.len; i++) {
        h ^= p[i];
        h *= 1099511628211ULL;
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&view);
    return PyLong_FromUnsignedLongLong(h);
}

static PyObject *
spam_counters(PyObject *module, PyObject *Py_UNUSED(ignored))
{
    return Py_BuildValue("[kn]", call_count, PyDict_Size(config));
}

static PyMethodDef spam_methods[] = {
    {"configure", (PyCFunction)(void (*)(void))spam_configure, METH_VARARGS | METH_KEYWORDS,
     "configure(**options)\n\nUpdate the module configuration."},
    {"get_option", spam_get_option, METH_VARARGS,
     "get_option(name, default=None)\n\nOne configuration value."},
    {"dump_config", spam_dump_config, METH_NOARGS, "The configuration as JSON text."},
    {"config_summary", spam_config_summary, METH_NOARGS, "The configuration as key=value text."},
    {"parse_spec", spam_parse_spec, METH_VARARGS,
     "parse_spec(spec)\n\nParse 'key=value,key=value' into a dict of strings."},
    {"checksum", spam_checksum, METH_O, "checksum(data)\n\n64-bit FNV-1a of a bytes-like object."},
    {"counters", spam_counters, METH_NOARGS, "[calls, number of options], for debugging."},
    {NULL, NULL, 0, NULL}
};

static int
spam_exec(PyObject *module)
{
    if (config == NULL) {
        PyObject *maxsize;

        config = PyDict_New();
        if (config == NULL)
            return -1;
        maxsize = PyLong_FromLong(SPAM_DEFAULT_MAXSIZE);
        if (maxsize == NULL || PyDict_SetItemString(config, "maxsize", maxsize) < 0 ||
            PyDict_SetItemString(config, "verbose", Py_False) < 0) {
            Py_XDECREF(maxsize);
            Py_CLEAR(config);
            return -1;
        }
        Py_DECREF(maxsize);
    }
    if (spam_lru_add_type(module) < 0)
        return -1;
    return PyModule_AddIntConstant(module, "DEFAULT_MAXSIZE", SPAM_DEFAULT_MAXSIZE);
}

static PyModuleDef_Slot spam_slots[] = {
    {Py_mod_exec, spam_exec},
    {0, NULL}
};

static struct PyModuleDef spammodule = {
    PyModuleDef_HEAD_INIT,
    .m_name = "spamcache._spam",
    .m_doc = "An LRU cache type and configuration helpers.",
    .m_size = 0,
    .m_methods = spam_methods,
    .m_slots = spam_slots,
};

PyMODINIT_FUNC
PyInit__spam(void)
{
    return PyModuleDef_Init(&spammodule);
}
