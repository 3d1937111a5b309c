/* The compiled twin of send_history.PySendHistory: the same methods, the same results. */
#include "_twin.h"

#define HISTORY 2048 /* as send_history.HISTORY */

typedef struct {
    PyObject_HEAD
    int last;
    int seqs[HISTORY]; /* -1: empty */
    double times[HISTORY];
    int sizes[HISTORY];
} History;

static int history_init(History *self, PyObject *args, PyObject *kwargs)
{
    if (!PyArg_ParseTuple(args, ":SendHistory") || (kwargs != NULL && PyDict_GET_SIZE(kwargs))) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_TypeError, "SendHistory() takes no arguments");
        return -1;
    }
    self->last = 0;
    for (int i = 0; i < HISTORY; i++)
        self->seqs[i] = -1;
    memset(self->times, 0, sizeof(self->times));
    memset(self->sizes, 0, sizeof(self->sizes));
    return 0;
}

/* seq, now and size of a call to next (seq NULL) or sent: 0, or -1 with an exception set. */
static int note(History *self, PyObject *seq_obj, PyObject *now_obj, PyObject *size_obj, int *seq_out)
{
    long seq, size;
    double now;
    int slot;

    now = PyFloat_AsDouble(now_obj);
    size = PyLong_AsLong(size_obj);
    if (seq_obj == NULL) {
        seq = self->last = (self->last + 1) & 0xFFFF;
    } else {
        seq = PyLong_AsLong(seq_obj);
    }
    if (PyErr_Occurred())
        return -1;
    if (size < INT_MIN || size > INT_MAX || seq < INT_MIN || seq > INT_MAX) {
        PyErr_SetString(PyExc_OverflowError, "seq and size must fit a C int");
        return -1;
    }
    slot = (int)(seq & (HISTORY - 1));
    self->seqs[slot] = (int)seq;
    self->times[slot] = now;
    self->sizes[slot] = (int)size;
    *seq_out = (int)seq;
    return 0;
}

static PyObject *history_next(History *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    static const char *const names[] = {"size", "now"};
    PyObject *given[2];
    int seq;

    if (kwnames == NULL && nargs == 2)
        memcpy(given, args, sizeof(given));
    else if (twin_args("next", args, nargs, kwnames, names, 2, 2, given) < 0)
        return NULL;
    if (note(self, NULL, given[1], given[0], &seq) < 0)
        return NULL;
    return PyLong_FromLong(seq);
}

static PyObject *history_sent(History *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    static const char *const names[] = {"seq", "now", "size"};
    PyObject *given[3];
    int seq;

    if (kwnames == NULL && nargs == 3)
        memcpy(given, args, sizeof(given));
    else if (twin_args("sent", args, nargs, kwnames, names, 3, 3, given) < 0)
        return NULL;
    if (note(self, given[0], given[1], given[2], &seq) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *history_lookup(History *self, PyObject *seq_obj)
{
    long seq = PyLong_AsLong(seq_obj);
    int slot;

    if (seq == -1 && PyErr_Occurred())
        return NULL;
    slot = (int)(seq & (HISTORY - 1));
    if (self->seqs[slot] != seq)
        Py_RETURN_NONE;
    return Py_BuildValue("(di)", self->times[slot], self->sizes[slot]);
}

static PyMethodDef history_methods[] = {
    {"next", (PyCFunction)(void (*)(void))history_next, METH_FASTCALL | METH_KEYWORDS,
     "The next transport-wide sequence number, for a packet of size bytes leaving now."},
    {"sent", (PyCFunction)(void (*)(void))history_sent, METH_FASTCALL | METH_KEYWORDS,
     "Packet seq (16 bits) of size bytes leaves at now (monotonic seconds)."},
    {"lookup", (PyCFunction)history_lookup, METH_O, "(send time, size) of packet seq, None if not remembered."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject HistoryType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "kolabmeet.media.worker._send_history.SendHistory",
    .tp_basicsize = sizeof(History),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Send time and size of the last HISTORY packets, by transport-wide sequence number.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)history_init,
    .tp_methods = history_methods,
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "kolabmeet.media.worker._send_history", NULL, -1, NULL,
};

PyMODINIT_FUNC PyInit__send_history(void)
{
    PyObject *module = twin_module(&module_def, &HistoryType);

    if (module == NULL || PyModule_AddIntConstant(module, "HISTORY", HISTORY) < 0) {
        Py_XDECREF(module);
        return NULL;
    }
    return module;
}
