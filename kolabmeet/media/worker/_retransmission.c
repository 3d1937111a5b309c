/* The compiled twin of retransmission.PyRetransmissionBuffer: the same methods, the same results.
 *
 * A ring of the last `size` packets a consumer sent, one reusable bytearray per slot; storing a
 * packet is one memcpy, with no Python object made.
 */
#include "_twin.h"

#define SLOT_ROUND 256 /* slot bytearrays are sized in multiples of this */

typedef struct {
    PyObject_HEAD
    Py_ssize_t size;
    int mask;
    double max_age_ms;
    PyObject **slots; /* bytearrays */
    Py_ssize_t *lengths;
    int *seqs; /* -1: empty */
    double *stored_at;
    double *resent_at;
} Buffer;

static void free_arrays(Buffer *self)
{
    if (self->slots != NULL) {
        for (Py_ssize_t i = 0; i < self->size; i++)
            Py_XDECREF(self->slots[i]);
    }
    PyMem_Free(self->slots);
    PyMem_Free(self->lengths);
    PyMem_Free(self->seqs);
    PyMem_Free(self->stored_at);
    PyMem_Free(self->resent_at);
    self->slots = NULL;
    self->lengths = NULL;
    self->seqs = NULL;
    self->stored_at = self->resent_at = NULL;
    self->size = 0;
}

static int buffer_init(Buffer *self, PyObject *args, PyObject *kwargs)
{
    static char *names[] = {"size", "max_age_ms", NULL};
    Py_ssize_t size = 1024;
    double max_age_ms = 2000;

    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|nd:RetransmissionBuffer", names, &size, &max_age_ms))
        return -1;
    if (size <= 0 || size & (size - 1) || size > 0x10000) {
        PyErr_SetString(PyExc_ValueError, "size must be a power of two");
        return -1;
    }
    free_arrays(self);
    self->slots = PyMem_Calloc((size_t)size, sizeof(PyObject *));
    self->lengths = PyMem_Calloc((size_t)size, sizeof(Py_ssize_t));
    self->seqs = PyMem_Malloc((size_t)size * sizeof(int));
    self->stored_at = PyMem_Calloc((size_t)size, sizeof(double));
    self->resent_at = PyMem_Malloc((size_t)size * sizeof(double));
    if (!self->slots || !self->lengths || !self->seqs || !self->stored_at || !self->resent_at) {
        free_arrays(self);
        PyErr_NoMemory();
        return -1;
    }
    self->size = size;
    self->mask = (int)size - 1;
    self->max_age_ms = max_age_ms;
    for (Py_ssize_t i = 0; i < size; i++) {
        self->seqs[i] = -1;
        self->resent_at[i] = -Py_HUGE_VAL;
    }
    return 0;
}

static PyObject *buffer_store(Buffer *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    static const char *const names[] = {"seq", "packet", "now_ms"};
    PyObject *given[3];
    long seq;
    double now_ms;
    Py_buffer packet;
    PyObject *slot;
    int index;

    if (kwnames == NULL && nargs == 3)
        memcpy(given, args, sizeof(given));
    else if (twin_args("store", args, nargs, kwnames, names, 3, 3, given) < 0)
        return NULL;
    if (self->size == 0) {
        PyErr_SetString(PyExc_TypeError, "RetransmissionBuffer.__init__ was not called");
        return NULL;
    }
    seq = PyLong_AsLong(given[0]);
    now_ms = PyFloat_AsDouble(given[2]);
    if (PyErr_Occurred() || PyObject_GetBuffer(given[1], &packet, PyBUF_SIMPLE) < 0)
        return NULL;
    seq &= 0xFFFF;
    index = (int)seq & self->mask;
    slot = self->slots[index];
    if (slot == NULL || PyByteArray_GET_SIZE(slot) < packet.len) {
        PyObject *grown = PyByteArray_FromStringAndSize(NULL, (packet.len + SLOT_ROUND - 1) / SLOT_ROUND * SLOT_ROUND);
        if (grown == NULL) {
            PyBuffer_Release(&packet);
            return NULL;
        }
        Py_XSETREF(self->slots[index], grown);
        slot = grown;
    }
    memcpy(PyByteArray_AS_STRING(slot), packet.buf, (size_t)packet.len);
    self->lengths[index] = packet.len;
    PyBuffer_Release(&packet);
    self->seqs[index] = (int)seq;
    self->stored_at[index] = now_ms;
    self->resent_at[index] = -Py_HUGE_VAL;
    Py_RETURN_NONE;
}

/* The slot of `seq` if it holds that packet and it is not too old; -1 otherwise (or on error). */
static int find(Buffer *self, PyObject *seq_obj, PyObject *now_obj, double *now_ms)
{
    long seq = PyLong_AsLong(seq_obj);
    int index;

    if (self->size == 0) {
        PyErr_SetString(PyExc_TypeError, "RetransmissionBuffer.__init__ was not called");
        return -1;
    }
    *now_ms = PyFloat_AsDouble(now_obj);
    if (PyErr_Occurred())
        return -1;
    seq &= 0xFFFF;
    index = (int)seq & self->mask;
    if (self->seqs[index] != seq || *now_ms - self->stored_at[index] > self->max_age_ms)
        return -1;
    return index;
}

static PyObject *stored(Buffer *self, int index)
{
    return Py_BuildValue("(On)", self->slots[index], self->lengths[index]);
}

static PyObject *buffer_get(Buffer *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    static const char *const names[] = {"seq", "now_ms"};
    PyObject *given[2];
    double now_ms;
    int index;

    if (twin_args("get", args, nargs, kwnames, names, 2, 2, given) < 0)
        return NULL;
    index = find(self, given[0], given[1], &now_ms);
    if (index < 0) {
        if (PyErr_Occurred())
            return NULL;
        Py_RETURN_NONE;
    }
    return stored(self, index);
}

static PyObject *buffer_resend(Buffer *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    static const char *const names[] = {"seq", "now_ms", "hold_ms"};
    PyObject *given[3];
    double now_ms, hold_ms;
    int index;

    if (twin_args("resend", args, nargs, kwnames, names, 3, 3, given) < 0)
        return NULL;
    hold_ms = PyFloat_AsDouble(given[2]);
    if (hold_ms == -1.0 && PyErr_Occurred())
        return NULL;
    index = find(self, given[0], given[1], &now_ms);
    if (index < 0 || now_ms - self->resent_at[index] < hold_ms) {
        if (PyErr_Occurred())
            return NULL;
        Py_RETURN_NONE;
    }
    self->resent_at[index] = now_ms;
    return stored(self, index);
}

static PyObject *buffer_clear(Buffer *self, PyObject *unused)
{
    for (Py_ssize_t i = 0; i < self->size; i++)
        self->seqs[i] = -1;
    Py_RETURN_NONE;
}

static void buffer_dealloc(Buffer *self)
{
    free_arrays(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMethodDef buffer_methods[] = {
    {"store", (PyCFunction)(void (*)(void))buffer_store, METH_FASTCALL | METH_KEYWORDS,
     "Keep a copy of packet (all of it), sent as seq."},
    {"get", (PyCFunction)(void (*)(void))buffer_get, METH_FASTCALL | METH_KEYWORDS,
     "(slot buffer, length) of packet seq; None if never stored, overwritten or too old."},
    {"resend", (PyCFunction)(void (*)(void))buffer_resend, METH_FASTCALL | METH_KEYWORDS,
     "Like get, for sending again; None also when it was resent less than hold_ms ago."},
    {"clear", (PyCFunction)buffer_clear, METH_NOARGS, "Forget every stored packet."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject BufferType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "kolabmeet.media.worker._retransmission.RetransmissionBuffer",
    .tp_basicsize = sizeof(Buffer),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "The last size sent packets of one consumer stream, indexed by sequence number.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)buffer_init,
    .tp_dealloc = (destructor)buffer_dealloc,
    .tp_methods = buffer_methods,
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "kolabmeet.media.worker._retransmission", NULL, -1, NULL,
};

PyMODINIT_FUNC PyInit__retransmission(void)
{
    return twin_module(&module_def, &BufferType);
}
