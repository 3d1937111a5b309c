/* What the compiled twins share: their methods take arguments as the Python twins' do. */
#ifndef KOLABMEET_TWIN_H
#define KOLABMEET_TWIN_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

/* Positional and keyword arguments of a METH_FASTCALL | METH_KEYWORDS call into out[0..total),
 * by the parameter names; the first `required` must be given, the others stay NULL if not.
 * 0, or -1 with TypeError set. */
static inline int twin_args(const char *function, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames,
                     const char *const *names, Py_ssize_t required, Py_ssize_t total, PyObject **out)
{
    Py_ssize_t i, k, given = kwnames == NULL ? 0 : PyTuple_GET_SIZE(kwnames);

    if (nargs > total)
        goto wrong;
    for (i = 0; i < total; i++)
        out[i] = i < nargs ? args[i] : NULL;
    for (k = 0; k < given; k++) {
        PyObject *name = PyTuple_GET_ITEM(kwnames, k);
        for (i = 0; i < total; i++) {
            if (PyUnicode_CompareWithASCIIString(name, names[i]) == 0)
                break;
        }
        if (i == total || out[i] != NULL)
            goto wrong;
        out[i] = args[nargs + k];
    }
    for (i = 0; i < required; i++) {
        if (out[i] == NULL)
            goto wrong;
    }
    return 0;
wrong:
    PyErr_Format(PyExc_TypeError, "%s(): wrong arguments (as its Python twin's)", function);
    return -1;
}

/* A twin's module with its type (made ready) in it, under the type's short name; NULL on error. */
static inline PyObject *twin_module(PyModuleDef *def, PyTypeObject *type)
{
    PyObject *module;

    if (PyType_Ready(type) < 0 || (module = PyModule_Create(def)) == NULL)
        return NULL;
    if (PyModule_AddType(module, type) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}

#endif
