/* The compiled twins of vp8.PyVp8Rewriter and vp8.read_picture: the same methods and results (the
 * rules are explained there). */
#include "_twin.h"

#define HISTORY 128 /* as vp8._HISTORY */

typedef struct {
    PyObject_HEAD
    int max_temporal, temporal;
    int pic_pending, pic_off, last_pic, newest;
    int tl0_pending, tl0_off, last_tl0;
    int src[HISTORY]; /* source PictureID of the picture in each history slot, -1: none */
    int out[HISTORY]; /* its output PictureID, -1 if dropped */
} Rewriter;

static void forget_pictures(Rewriter *self)
{
    for (int i = 0; i < HISTORY; i++)
        self->src[i] = self->out[i] = -1;
}

static int rewriter_init(Rewriter *self, PyObject *args, PyObject *kwargs)
{
    if (!PyArg_ParseTuple(args, ":Vp8Rewriter") || (kwargs != NULL && PyDict_GET_SIZE(kwargs))) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_TypeError, "Vp8Rewriter() takes no arguments");
        return -1;
    }
    self->max_temporal = self->temporal = 3; /* vp8.MAX_TEMPORAL_LAYER */
    self->last_pic = self->last_tl0 = -1;
    self->pic_off = self->tl0_off = self->newest = 0;
    self->pic_pending = self->tl0_pending = 1;
    forget_pictures(self);
    return 0;
}

static int up_to(Rewriter *self, int tid, int layer_sync)
{
    if (layer_sync && tid <= self->max_temporal) {
        self->temporal = tid;
        return 1;
    }
    return 0;
}

static int new_picture(Rewriter *self, int src, int slot, int tid, int wide, int layer_sync)
{
    int mask = wide ? 0x7FFF : 0x7F, since, newer, out;

    if (self->pic_pending) {
        self->pic_pending = 0;
        self->pic_off = self->last_pic < 0 ? 0 : (self->last_pic + 1 - src) & 0x7FFF;
        self->newest = (src - 1) & mask;
    }
    since = (src - self->newest) & mask;
    newer = 0 < since && since <= mask >> 1;
    if (newer)
        self->newest = src;
    self->src[slot] = src;
    if (tid > self->temporal && !up_to(self, tid, layer_sync)) {
        self->out[slot] = -1;
        if (newer)
            self->pic_off = (self->pic_off - 1) & 0x7FFF;
        return -1;
    }
    out = self->out[slot] = (src + self->pic_off) & 0x7FFF;
    if (newer)
        self->last_pic = out;
    return out;
}

/* The seven fields of a vp8.Vp8Picture: 0, or -1 with an exception set. */
static int unpack_picture(PyObject *picture, long *fields)
{
    if (!PyTuple_Check(picture) || PyTuple_GET_SIZE(picture) != 7) {
        PyErr_SetString(PyExc_TypeError, "picture must be a Vp8Picture or None");
        return -1;
    }
    for (int i = 0; i < 7; i++) {
        fields[i] = PyLong_AsLong(PyTuple_GET_ITEM(picture, i));
        if (fields[i] == -1 && PyErr_Occurred())
            return -1;
    }
    return 0;
}

static int out_of_range(void)
{
    PyErr_SetString(PyExc_IndexError, "picture offsets outside the buffer");
    return -1;
}

/* rewrite() on an unpacked picture: 1 (send), 0 (drop), -1 (error). */
static int rewrite_picture(Rewriter *self, unsigned char *buf, Py_ssize_t size, const long *f)
{
    long pic_at = f[0], wide = f[1], src = f[2], tl0_at = f[3], tl0 = f[4], tid = f[5], layer_sync = f[6];

    if (pic_at < 0) {
        if (tid > self->temporal && !up_to(self, (int)tid, (int)layer_sync))
            return 0;
    } else {
        int slot = (int)(src & 0x7F), out;
        if (pic_at + (wide ? 1 : 0) >= size)
            return out_of_range();
        out = self->src[slot] == src ? self->out[slot]
                                     : new_picture(self, (int)src, slot, (int)tid, (int)wide, (int)layer_sync);
        if (out < 0)
            return 0;
        if (wide) {
            buf[pic_at] = (unsigned char)(0x80 | out >> 8);
            buf[pic_at + 1] = (unsigned char)(out & 0xFF);
        } else {
            buf[pic_at] = (unsigned char)(out & 0x7F);
        }
    }
    if (tl0_at >= 0) {
        int out;
        if (tl0_at >= size)
            return out_of_range();
        if (self->tl0_pending) {
            self->tl0_pending = 0;
            self->tl0_off = self->last_tl0 < 0 ? 0 : (self->last_tl0 + 1 - (int)tl0) & 0xFF;
            self->last_tl0 = ((int)tl0 + self->tl0_off - 1) & 0xFF;
        }
        out = ((int)tl0 + self->tl0_off) & 0xFF;
        buf[tl0_at] = (unsigned char)out;
        if (((out - self->last_tl0) & 0xFF) < 0x80)
            self->last_tl0 = out;
    }
    return 1;
}

static PyObject *rewriter_rewrite(Rewriter *self, PyObject *const *args, Py_ssize_t nargs)
{
    long fields[7];
    Py_buffer view;
    int result;

    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "rewrite() takes buf and picture");
        return NULL;
    }
    if (args[1] == Py_None)
        Py_RETURN_TRUE;
    if (unpack_picture(args[1], fields) < 0)
        return NULL;
    if (PyByteArray_CheckExact(args[0])) {
        result = rewrite_picture(self, (unsigned char *)PyByteArray_AS_STRING(args[0]),
                                 PyByteArray_GET_SIZE(args[0]), fields);
    } else {
        if (PyObject_GetBuffer(args[0], &view, PyBUF_WRITABLE) < 0)
            return NULL;
        result = rewrite_picture(self, view.buf, view.len, fields);
        PyBuffer_Release(&view);
    }
    if (result < 0)
        return NULL;
    return PyBool_FromLong(result);
}

static PyObject *rewriter_sync(Rewriter *self, PyObject *unused)
{
    self->pic_pending = self->tl0_pending = 1;
    forget_pictures(self);
    self->temporal = self->max_temporal;
    Py_RETURN_NONE;
}

static PyObject *get_max_temporal(Rewriter *self, void *closure)
{
    return PyLong_FromLong(self->max_temporal);
}

static int set_max_temporal(Rewriter *self, PyObject *value, void *closure)
{
    long layer;

    if (value == NULL) {
        PyErr_SetString(PyExc_AttributeError, "max_temporal_layer cannot be deleted");
        return -1;
    }
    layer = PyLong_AsLong(value);
    if (layer == -1 && PyErr_Occurred())
        return -1;
    if (layer < INT_MIN || layer > INT_MAX) {
        PyErr_SetString(PyExc_OverflowError, "max_temporal_layer must fit a C int");
        return -1;
    }
    self->max_temporal = (int)layer;
    if (self->temporal > layer)
        self->temporal = (int)layer;
    return 0;
}

static PyGetSetDef rewriter_getset[] = {
    {"max_temporal_layer", (getter)get_max_temporal, (setter)set_max_temporal,
     "Pictures with a higher TID are dropped (0..3).", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMethodDef rewriter_methods[] = {
    {"rewrite", (PyCFunction)(void (*)(void))rewriter_rewrite, METH_FASTCALL,
     "Write this consumer's PictureID and TL0PICIDX for picture into buf; False: drop the packet."},
    {"sync", (PyCFunction)rewriter_sync, METH_NOARGS,
     "Make the next picture follow the last one sent; a key frame follows."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject RewriterType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "kolabmeet.media.worker._vp8.Vp8Rewriter",
    .tp_basicsize = sizeof(Rewriter),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Keeps one consumer's PictureID and TL0PICIDX continuous across stream switches and drops.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)rewriter_init,
    .tp_methods = rewriter_methods,
    .tp_getset = rewriter_getset,
};

static PyTypeObject *picture_type; /* vp8.Vp8Picture, given by use_picture_type */

static PyObject *use_picture_type(PyObject *module, PyObject *type)
{
    if (!PyType_Check(type) || !PyType_IsSubtype((PyTypeObject *)type, &PyTuple_Type)) {
        PyErr_SetString(PyExc_TypeError, "the picture type must be a tuple type");
        return NULL;
    }
    Py_INCREF(type);
    Py_XSETREF(picture_type, (PyTypeObject *)type);
    Py_RETURN_NONE;
}

/* vp8.read_picture on bytes whose bounds were checked: a Vp8Picture, or None. */
static PyObject *picture_of(const unsigned char *buf, Py_ssize_t start, Py_ssize_t end)
{
    Py_ssize_t pos = start + 2, pic_at = -1, tl0_at = -1, tk_at;
    long values[7];
    int ext = buf[start + 1], pic = 0, wide = 0, tid, layer_sync;
    PyObject *picture;

    if (ext & 0x80) {
        pic_at = pos;
        pos += buf[pos] & 0x80 ? 2 : 1;
    }
    if (ext & 0x40)
        tl0_at = pos++;
    tk_at = pos;
    if (ext & 0x30)
        pos++;
    if (pos >= end)
        Py_RETURN_NONE;
    if (pic_at >= 0) {
        pic = buf[pic_at];
        wide = pic & 0x80;
        if (wide)
            pic = (pic & 0x7F) << 8 | buf[pic_at + 1];
    }
    tid = ext & 0x20 ? buf[tk_at] >> 6 : -1;
    layer_sync = tid > 0 ? buf[tk_at] & 0x20 : 0;
    values[0] = (long)pic_at;
    values[1] = wide;
    values[2] = pic;
    values[3] = (long)tl0_at;
    values[4] = tl0_at >= 0 ? buf[tl0_at] : 0;
    values[5] = tid;
    values[6] = layer_sync;
    picture = picture_type->tp_alloc(picture_type, 7);
    if (picture == NULL)
        return NULL;
    for (int i = 0; i < 7; i++) {
        PyObject *value = PyLong_FromLong(values[i]);
        if (value == NULL) {
            Py_DECREF(picture);
            return NULL;
        }
        PyTuple_SET_ITEM(picture, i, value);
    }
    return picture;
}

static PyObject *read_picture(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    Py_buffer view;
    Py_ssize_t start, end;
    PyObject *result;

    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "read_picture() takes buf, start and end");
        return NULL;
    }
    if (picture_type == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "use_picture_type() was not called");
        return NULL;
    }
    start = PyLong_AsSsize_t(args[1]);
    end = PyLong_AsSsize_t(args[2]);
    if (PyErr_Occurred() || PyObject_GetBuffer(args[0], &view, PyBUF_SIMPLE) < 0)
        return NULL;
    if (start < 0 || end > view.len || end - start < 3 || !(((unsigned char *)view.buf)[start] & 0x80)) {
        PyBuffer_Release(&view);
        Py_RETURN_NONE;
    }
    result = picture_of(view.buf, start, end);
    PyBuffer_Release(&view);
    return result;
}

static PyMethodDef module_methods[] = {
    {"read_picture", (PyCFunction)(void (*)(void))read_picture, METH_FASTCALL,
     "The fields of payload buf[start:end] to rewrite; None when there is nothing to."},
    {"use_picture_type", (PyCFunction)use_picture_type, METH_O, "The tuple type read_picture returns."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "kolabmeet.media.worker._vp8", NULL, -1, module_methods,
};

PyMODINIT_FUNC PyInit__vp8(void)
{
    PyObject *module = twin_module(&module_def, &RewriterType);

    if (module == NULL || PyModule_AddIntConstant(module, "HISTORY", HISTORY) < 0) {
        Py_XDECREF(module);
        return NULL;
    }
    return module;
}
