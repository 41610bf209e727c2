/* gilaudit's compatibility prelude, included before every translation unit it parses.
 *
 * It makes the code parse the way a free-threaded 3.14 build compiles it: Py_GIL_DISABLED is
 * defined on the command line, the 3.13/3.14 free-threading APIs are declared when the headers
 * at hand are older, and PY_VERSION_HEX claims 3.14 so that `#if PY_VERSION_HEX >= 0x030D0000`
 * branches (and pythoncapi_compat.h's shims) resolve as on the target.  Declarations only: the
 * code is never linked or run.
 */
#ifndef GILAUDIT_PRELUDE_H
#define GILAUDIT_PRELUDE_H
#include <Python.h>

#define GILAUDIT_REAL_PY_VERSION_HEX PY_VERSION_HEX

#ifdef __cplusplus
extern "C" {
#endif

#ifndef Py_mod_gil
#define Py_mod_gil 4
#endif
#ifndef Py_MOD_GIL_USED
#define Py_MOD_GIL_USED ((void *)0)
#endif
#ifndef Py_MOD_GIL_NOT_USED
#define Py_MOD_GIL_NOT_USED ((void *)1)
#endif

/* 3.11 and 3.12 APIs that code written for 3.14 (and binding libraries such as pybind11)
 * use once PY_VERSION_HEX claims 3.14 below. */
#if PY_VERSION_HEX < 0x030B0000
PyObject *PyCode_GetVarnames(PyCodeObject *code);
PyObject *PyCode_GetCellvars(PyCodeObject *code);
PyObject *PyCode_GetFreevars(PyCodeObject *code);
PyObject *PyCode_GetCode(PyCodeObject *code);
PyObject *PyFrame_GetLocals(PyFrameObject *frame);
PyObject *PyFrame_GetGlobals(PyFrameObject *frame);
PyObject *PyFrame_GetBuiltins(PyFrameObject *frame);
#endif
#ifndef Py_TPFLAGS_MANAGED_DICT
#define Py_TPFLAGS_MANAGED_DICT (1 << 4)
#endif
#ifndef Py_TPFLAGS_MANAGED_WEAKREF
#define Py_TPFLAGS_MANAGED_WEAKREF (1 << 3)
#endif
#if PY_VERSION_HEX < 0x030C0000
PyObject *PyErr_GetRaisedException(void);
void PyErr_SetRaisedException(PyObject *exc);
PyObject *PyType_GetDict(PyTypeObject *type);
#endif

#if PY_VERSION_HEX < 0x030D0000
int PyUnstable_Module_SetGIL(PyObject *module, void *gil);
typedef struct PyMutex { unsigned char _bits; } PyMutex;
void PyMutex_Lock(PyMutex *m);
void PyMutex_Unlock(PyMutex *m);
typedef struct PyCriticalSection { void *_cs_prev; PyMutex *_cs_mutex; } PyCriticalSection;
typedef struct PyCriticalSection2 { PyCriticalSection _cs_base; PyMutex *_cs_mutex2; } PyCriticalSection2;
void PyCriticalSection_Begin(PyCriticalSection *c, PyObject *op);
void PyCriticalSection_End(PyCriticalSection *c);
void PyCriticalSection2_Begin(PyCriticalSection2 *c, PyObject *a, PyObject *b);
void PyCriticalSection2_End(PyCriticalSection2 *c);
#define Py_BEGIN_CRITICAL_SECTION(op) { PyCriticalSection _py_cs; PyCriticalSection_Begin(&_py_cs, (PyObject *)(op))
#define Py_END_CRITICAL_SECTION() PyCriticalSection_End(&_py_cs); }
#define Py_BEGIN_CRITICAL_SECTION2(a, b) { PyCriticalSection2 _py_cs2; PyCriticalSection2_Begin(&_py_cs2, (PyObject *)(a), (PyObject *)(b))
#define Py_END_CRITICAL_SECTION2() PyCriticalSection2_End(&_py_cs2); }
int PyDict_GetItemRef(PyObject *p, PyObject *key, PyObject **result);
int PyDict_GetItemStringRef(PyObject *p, const char *key, PyObject **result);
int PyDict_SetDefaultRef(PyObject *p, PyObject *key, PyObject *default_value, PyObject **result);
int PyDict_Pop(PyObject *p, PyObject *key, PyObject **result);
int PyDict_PopString(PyObject *p, const char *key, PyObject **result);
PyObject *PyList_GetItemRef(PyObject *list, Py_ssize_t index);
int PyList_Extend(PyObject *list, PyObject *iterable);
int PyList_Clear(PyObject *list);
PyObject *PyImport_AddModuleRef(const char *name);
PyObject *PyEval_GetFrameBuiltins(void);
PyObject *PyEval_GetFrameGlobals(void);
PyObject *PyEval_GetFrameLocals(void);
int PyLong_AsInt(PyObject *obj);
int PyDict_ContainsString(PyObject *p, const char *key);
int PyObject_GetOptionalAttr(PyObject *obj, PyObject *name, PyObject **result);
int PyObject_GetOptionalAttrString(PyObject *obj, const char *name, PyObject **result);
int PyMapping_GetOptionalItem(PyObject *obj, PyObject *key, PyObject **result);
int PyMapping_GetOptionalItemString(PyObject *obj, const char *key, PyObject **result);
int PyObject_HasAttrWithError(PyObject *obj, PyObject *name);
int PyObject_HasAttrStringWithError(PyObject *obj, const char *name);
int PyModule_Add(PyObject *module, const char *name, PyObject *value);
int PyUnicode_EqualToUTF8(PyObject *unicode, const char *string);
int Py_IsFinalizing(void);
PyThreadState *PyThreadState_GetUnchecked(void);
int PyObject_VisitManagedDict(PyObject *obj, visitproc visit, void *arg);
void PyObject_ClearManagedDict(PyObject *obj);
int PyWeakref_GetRef(PyObject *ref, PyObject **pobj);
#endif

/* Not for a 3.13 interpreter's own headers: its build has none of these, and its internal
 * headers define some of them differently (pycore_lock.h's static PyMutex_IsLocked). */
#if PY_VERSION_HEX < 0x030E0000 && !defined(GILAUDIT_TARGET_PYTHON)
int PyMutex_IsLocked(PyMutex *m);
int PyUnstable_Object_IsUniquelyReferenced(PyObject *op);
int PyUnstable_Object_IsUniqueReferencedTemporary(PyObject *op);
int PyUnstable_TryIncRef(PyObject *op);
void PyUnstable_EnableTryIncRef(PyObject *op);
int PyWeakref_IsDead(PyObject *ref);
void PyCriticalSection_BeginMutex(PyCriticalSection *c, PyMutex *m);
void PyCriticalSection2_BeginMutex(PyCriticalSection2 *c, PyMutex *m1, PyMutex *m2);
#define Py_BEGIN_CRITICAL_SECTION_MUTEX(m) { PyCriticalSection _py_cs; PyCriticalSection_BeginMutex(&_py_cs, m)
#define Py_BEGIN_CRITICAL_SECTION2_MUTEX(m1, m2) { PyCriticalSection2 _py_cs2; PyCriticalSection2_BeginMutex(&_py_cs2, m1, m2)
#endif

#ifdef __cplusplus
}
#endif

/* Parsed against a free-threaded interpreter's own headers, the code sees that interpreter's
 * version, as its build does. */
#ifndef GILAUDIT_TARGET_PYTHON
#undef PY_VERSION_HEX
#define PY_VERSION_HEX 0x030E00F0
#undef PY_MINOR_VERSION
#define PY_MINOR_VERSION 14
#endif
#endif /* GILAUDIT_PRELUDE_H */
