/* The compiled twin of retransmission.PyRetransmissionBuffer: the same methods, the same results.
 *
 * A ring of the last packets a consumer sent, one reusable bytearray per slot; storing a packet
 * is one memcpy, with no Python object made. The ring starts small and doubles, up to `size`
 * slots, when a packet would overwrite one still young enough to be asked for again.
 */
#include "_twin.h"

#include <structmember.h>

#define SLOT_ROUND 256 /* slot bytearrays are sized in multiples of this */
#define FIRST_SLOTS 64 /* as retransmission.FIRST_SLOTS */

typedef struct {
    PyObject_HEAD
    Py_ssize_t size; /* the most slots */
    Py_ssize_t capacity; /* slots now */
    int mask;
    double max_age_ms;
    PyObject **slots; /* bytearrays */
    Py_ssize_t *lengths;
    int *seqs; /* -1: empty */
    double *stored_at;
    double *resent_at;
} Buffer;

typedef struct {
    PyObject **slots;
    Py_ssize_t *lengths;
    int *seqs;
    double *stored_at;
    double *resent_at;
} Arrays;

/* Empty arrays of `capacity` slots, or all NULL with MemoryError set. */
static Arrays new_arrays(Py_ssize_t capacity)
{
    Arrays a = {
        PyMem_Calloc((size_t)capacity, sizeof(PyObject *)), PyMem_Calloc((size_t)capacity, sizeof(Py_ssize_t)),
        PyMem_Malloc((size_t)capacity * sizeof(int)), PyMem_Calloc((size_t)capacity, sizeof(double)),
        PyMem_Malloc((size_t)capacity * sizeof(double)),
    };

    if (!a.slots || !a.lengths || !a.seqs || !a.stored_at || !a.resent_at) {
        PyMem_Free(a.slots);
        PyMem_Free(a.lengths);
        PyMem_Free(a.seqs);
        PyMem_Free(a.stored_at);
        PyMem_Free(a.resent_at);
        PyErr_NoMemory();
        return (Arrays){NULL, NULL, NULL, NULL, NULL};
    }
    for (Py_ssize_t i = 0; i < capacity; i++) {
        a.seqs[i] = -1;
        a.resent_at[i] = -Py_HUGE_VAL;
    }
    return a;
}

/* The buffer's arrays replaced by `a` of `capacity` slots (the old ones freed, not their slots). */
static void use_arrays(Buffer *self, Arrays a, Py_ssize_t capacity)
{
    PyMem_Free(self->slots);
    PyMem_Free(self->lengths);
    PyMem_Free(self->seqs);
    PyMem_Free(self->stored_at);
    PyMem_Free(self->resent_at);
    self->slots = a.slots;
    self->lengths = a.lengths;
    self->seqs = a.seqs;
    self->stored_at = a.stored_at;
    self->resent_at = a.resent_at;
    self->capacity = capacity;
    self->mask = (int)capacity - 1;
}

static void free_arrays(Buffer *self)
{
    if (self->slots != NULL) {
        for (Py_ssize_t i = 0; i < self->capacity; i++)
            Py_XDECREF(self->slots[i]);
    }
    use_arrays(self, (Arrays){NULL, NULL, NULL, NULL, NULL}, 0);
    self->size = 0;
}

/* Twice the slots, each stored packet moved to its slot in the larger ring (an empty slot's
 * memory stays at its index, which no moved packet takes): 0, or -1 with MemoryError set. */
static int grow(Buffer *self)
{
    Py_ssize_t capacity = self->capacity * 2;
    Arrays a = new_arrays(capacity);

    if (a.slots == NULL)
        return -1;
    for (Py_ssize_t i = 0; i < self->capacity; i++) {
        Py_ssize_t j = self->seqs[i] < 0 ? i : (self->seqs[i] & (capacity - 1));
        a.slots[j] = self->slots[i];
        a.lengths[j] = self->lengths[i];
        a.seqs[j] = self->seqs[i];
        a.stored_at[j] = self->stored_at[i];
        a.resent_at[j] = self->resent_at[i];
    }
    use_arrays(self, a, capacity);
    return 0;
}

static int buffer_init(Buffer *self, PyObject *args, PyObject *kwargs)
{
    static char *names[] = {"size", "max_age_ms", NULL};
    Py_ssize_t size = 1024, capacity;
    double max_age_ms = 2000;
    Arrays a;

    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|nd:RetransmissionBuffer", names, &size, &max_age_ms))
        return -1;
    if (size <= 0 || size & (size - 1) || size > 0x10000) {
        PyErr_SetString(PyExc_ValueError, "size must be a power of two");
        return -1;
    }
    free_arrays(self);
    capacity = size < FIRST_SLOTS ? size : FIRST_SLOTS;
    a = new_arrays(capacity);
    if (a.slots == NULL)
        return -1;
    use_arrays(self, a, capacity);
    self->size = size;
    self->max_age_ms = max_age_ms;
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
    while (self->seqs[index] >= 0 && self->seqs[index] != seq && now_ms - self->stored_at[index] <= self->max_age_ms
           && self->capacity < self->size) {
        if (grow(self) < 0) {
            PyBuffer_Release(&packet);
            return NULL;
        }
        index = (int)seq & self->mask;
    }
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
    for (Py_ssize_t i = 0; i < self->capacity; i++)
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

static PyMemberDef buffer_members[] = {
    {"capacity", T_PYSSIZET, offsetof(Buffer, capacity), READONLY, "Slots the ring has now."},
    {NULL, 0, 0, 0, NULL},
};

static PyTypeObject BufferType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "kolabmeet.media.worker._retransmission.RetransmissionBuffer",
    .tp_basicsize = sizeof(Buffer),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "The last sent packets of one consumer stream (up to size), indexed by sequence number.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)buffer_init,
    .tp_dealloc = (destructor)buffer_dealloc,
    .tp_methods = buffer_methods,
    .tp_members = buffer_members,
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "kolabmeet.media.worker._retransmission", NULL, -1, NULL,
};

PyMODINIT_FUNC PyInit__retransmission(void)
{
    return twin_module(&module_def, &BufferType);
}
