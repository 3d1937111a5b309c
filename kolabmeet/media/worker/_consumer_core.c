/* The compiled twin of consumer_core.py: the same fields, the same forwarding rules (explained
 * there), written as the Python twin is, step by step.
 *
 * The fields are C members of ConsumerCore, which consumer.Consumer subclasses, so the Python
 * code of the consumer reads and writes the very values this path uses. fan_out reads the
 * producer's per-packet values once and runs each consumer of this core's own send_rtp here,
 * without a Python call; the consumers that forward otherwise (pipes) are called as they are.
 */
#include "_twin.h"
#include <structmember.h>

#define MID_SLOT 8           /* rtp.MID_SLOT */
#define SYNC_WINDOW 0x4000   /* consumer_core.SYNC_WINDOW */
#define LAYER_SILENCE 0.5    /* consumer_core.LAYER_SILENCE */
#define SILENCE_CONFIRM 0.1  /* consumer_core.SILENCE_CONFIRM */

typedef struct {
    PyObject_HEAD
    PyObject *producer, *transport, *ext_map, *rtx_buffer, *pt_map, *vp8, *mid;
    char active, is_video, sync_needed, writes_twcc;
    int current_layer, target_layer, sync_seq, seq_off, last_seq, priority;
    unsigned int ssrc, ts_off, last_ts;
    long long packets, bytes;
    double last_sent, silent_since;
    char direct; /* its type forwards with this send_rtp (not overridden) */
} Core;

/* One packet as fan_out hands it to each consumer: the arguments, and the producer's values. */
typedef struct {
    PyObject *buf, *view, *length, *seq, *ts, *now, *picture; /* borrowed */
    unsigned char *data;
    Py_ssize_t size, length_value;
    long seq_value, ts_value, mid_at, twcc_at;
    int marked_pt, keyframe, layer, mid_two_byte;
    double now_value;
    PyObject *now_ms; /* made when first needed, released by the caller */
} Packet;

static PyTypeObject CoreType;
static PyObject *str_send_rtp, *str_rewrite, *str_store, *str_next_twcc_seq, *str_switch_layer, *str_fall_back,
    *str_sync, *str_layer_streams, *str_last_time, *str_vp8_picture, *str_now, *str_mid_at, *str_mid_two_byte,
    *str_twcc_at;
static PyObject *core_send_rtp_descriptor; /* ConsumerCore.send_rtp, to tell overriding types */

static int attr_long(PyObject *obj, PyObject *name, long *out)
{
    PyObject *value = PyObject_GetAttr(obj, name);
    if (value == NULL)
        return -1;
    *out = PyLong_AsLong(value);
    Py_DECREF(value);
    return *out == -1 && PyErr_Occurred() ? -1 : 0;
}

/* The producer's values for this packet: 0, or -1 with an exception set. The caller releases
 * packet->now and packet->picture (owned here) with release_packet. */
static int read_producer(PyObject *producer, Packet *packet)
{
    long two_byte;

    packet->now_ms = packet->now = NULL;
    if ((packet->picture = PyObject_GetAttr(producer, str_vp8_picture)) == NULL
        || (packet->now = PyObject_GetAttr(producer, str_now)) == NULL)
        return -1;
    packet->now_value = PyFloat_AsDouble(packet->now);
    if (packet->now_value == -1.0 && PyErr_Occurred())
        return -1;
    if (attr_long(producer, str_mid_at, &packet->mid_at) < 0 || attr_long(producer, str_twcc_at, &packet->twcc_at) < 0
        || attr_long(producer, str_mid_two_byte, &two_byte) < 0)
        return -1;
    packet->mid_two_byte = two_byte != 0;
    return 0;
}

static void release_packet(Packet *packet)
{
    Py_CLEAR(packet->picture);
    Py_CLEAR(packet->now);
    Py_CLEAR(packet->now_ms);
}

/* Call self.<name>(*args); -1 on error, else the truth of the result. */
static int call_method(PyObject *self, PyObject *name, PyObject *const *args, size_t nargs)
{
    PyObject *stack[4], *result;
    int truth;

    stack[0] = self;
    for (size_t i = 0; i < nargs; i++)
        stack[i + 1] = args[i];
    result = PyObject_VectorcallMethod(name, stack, nargs + 1, NULL);
    if (result == NULL)
        return -1;
    truth = PyObject_IsTrue(result);
    Py_DECREF(result);
    return truth;
}

static int call_with_long(PyObject *self, PyObject *name, long value)
{
    PyObject *arg = PyLong_FromLong(value);
    int result;

    if (arg == NULL)
        return -1;
    result = call_method(self, name, &arg, 1);
    Py_DECREF(arg);
    return result;
}

/* consumer_core.PyConsumerCore._target_silent: 1, 0, or -1 on error. */
static int target_silent(Core *self, double now)
{
    PyObject *streams, *stream;
    double last_time;

    streams = PyObject_GetAttr(self->producer, str_layer_streams);
    if (streams == NULL)
        return -1;
    stream = PySequence_GetItem(streams, self->target_layer);
    Py_DECREF(streams);
    if (stream == NULL)
        return -1;
    if (stream != Py_None) {
        PyObject *value = PyObject_GetAttr(stream, str_last_time);
        Py_DECREF(stream);
        if (value == NULL)
            return -1;
        last_time = PyFloat_AsDouble(value);
        Py_DECREF(value);
        if (last_time == -1.0 && PyErr_Occurred())
            return -1;
        if (now - last_time <= LAYER_SILENCE) {
            self->silent_since = 0.0;
            return 0;
        }
    } else {
        Py_DECREF(stream);
    }
    if (!self->silent_since) {
        self->silent_since = now;
        return 0;
    }
    return now - self->silent_since >= SILENCE_CONFIRM;
}

/* Whether the packet goes on to be rewritten: 1, 0 (dropped here), -1 (error). The layer gate,
 * the (re)start on a key frame and the packets from before it. */
static int admit(Core *self, const Packet *p)
{
    if (p->layer != self->current_layer) {
        if (p->layer != self->target_layer || !p->keyframe) {
            if (p->layer < self->target_layer && self->current_layer >= 0) {
                int silent = target_silent(self, p->now_value);
                if (silent <= 0)
                    return silent;
                if (call_with_long((PyObject *)self, str_fall_back, p->layer) < 0)
                    return -1;
            }
            return 0;
        }
        if (call_with_long((PyObject *)self, str_switch_layer, p->layer) < 0)
            return -1;
    }
    if (self->sync_needed) {
        PyObject *args[2] = {p->seq, p->ts};
        if (self->is_video && !p->keyframe)
            return 0;
        return call_method((PyObject *)self, str_sync, args, 2) < 0 ? -1 : 1;
    }
    long since = (p->seq_value - self->sync_seq) & 0xFFFF;
    if (since >= 0x8000)
        return 0;
    if (since > SYNC_WINDOW)
        self->sync_seq = (int)((p->seq_value - SYNC_WINDOW) & 0xFFFF);
    return 1;
}

/* The transport-wide sequence number written into the packet, -1 if none, -2 on error. */
static long write_extensions(Core *self, Packet *p)
{
    PyObject *result, *transport;
    long twcc_seq;

    if (p->mid_at > 0 && self->mid != NULL && self->mid != Py_None) {
        PyObject *element = PySequence_GetItem(self->mid, p->mid_two_byte);
        if (element == NULL)
            return -2;
        if (!PyBytes_Check(element) || PyBytes_GET_SIZE(element) != MID_SLOT + 1 || p->mid_at + MID_SLOT > p->size) {
            Py_DECREF(element);
            PyErr_SetString(PyExc_ValueError, "a MID element must have MID_SLOT + 1 bytes, inside the packet");
            return -2;
        }
        memcpy(p->data + p->mid_at - 1, PyBytes_AS_STRING(element), MID_SLOT + 1);
        Py_DECREF(element);
    }
    if (p->twcc_at <= 0 || !self->writes_twcc)
        return -1;
    if (p->twcc_at + 1 >= p->size) {
        PyErr_SetString(PyExc_IndexError, "transport-wide sequence number outside the packet");
        return -2;
    }
    /* an attribute holding the send history's next(): VectorcallMethod calls it without the transport */
    transport = Py_NewRef(self->transport);
    result = PyObject_VectorcallMethod(str_next_twcc_seq, (PyObject *[]){transport, p->length, p->now}, 3, NULL);
    Py_DECREF(transport);
    if (result == NULL)
        return -2;
    twcc_seq = PyLong_AsLong(result);
    Py_DECREF(result);
    if (twcc_seq == -1 && PyErr_Occurred())
        return -2;
    p->data[p->twcc_at] = (unsigned char)(twcc_seq >> 8);
    p->data[p->twcc_at + 1] = (unsigned char)(twcc_seq & 0xFF);
    return twcc_seq;
}

/* Keep a copy for retransmission, then hand the packet to the transport: 0, or -1 on error. */
static int send_packet(Core *self, Packet *p, long out_seq, long twcc_seq)
{
    PyObject *seq_obj, *priority, *twcc, *result, *transport, *ext_map;
    int sent;

    if (self->rtx_buffer != NULL && self->rtx_buffer != Py_None) {
        PyObject *buffer;
        if (p->now_ms == NULL && (p->now_ms = PyFloat_FromDouble(p->now_value * 1000)) == NULL)
            return -1;
        seq_obj = PyLong_FromLong(out_seq);
        if (seq_obj == NULL)
            return -1;
        buffer = Py_NewRef(self->rtx_buffer);
        result = PyObject_VectorcallMethod(str_store, (PyObject *[]){buffer, seq_obj, p->view, p->now_ms}, 4, NULL);
        Py_DECREF(buffer);
        Py_DECREF(seq_obj);
        if (result == NULL)
            return -1;
        Py_DECREF(result);
    }
    priority = PyLong_FromLong(self->priority);
    twcc = PyLong_FromLong(twcc_seq);
    if (priority == NULL || twcc == NULL) {
        Py_XDECREF(priority);
        Py_XDECREF(twcc);
        return -1;
    }
    transport = Py_NewRef(self->transport);
    ext_map = Py_NewRef(self->ext_map ? self->ext_map : Py_None);
    result = PyObject_VectorcallMethod(str_send_rtp,
                                       (PyObject *[]){transport, p->view, ext_map, priority, Py_True, p->now, twcc},
                                       7, NULL);
    Py_DECREF(transport);
    Py_DECREF(ext_map);
    Py_DECREF(priority);
    Py_DECREF(twcc);
    if (result == NULL)
        return -1;
    sent = PyObject_IsTrue(result);
    Py_DECREF(result);
    if (sent < 0)
        return -1;
    if (sent) {
        self->packets += 1;
        self->bytes += p->length_value;
    }
    return 0;
}

/* PyConsumerCore.send_rtp for one packet: 0, or -1 with an exception set. */
static int forward(Core *self, Packet *p)
{
    const unsigned char *pt_map;
    int pt, admitted;
    long out_seq, twcc_seq;
    unsigned long out_ts;

    if (!self->active)
        return 0;
    if (self->transport == NULL || self->producer == NULL) {
        PyErr_SetString(PyExc_TypeError, "a consumer core needs its producer and transport");
        return -1;
    }
    if (self->pt_map == NULL || !PyBytes_Check(self->pt_map) || PyBytes_GET_SIZE(self->pt_map) <= p->marked_pt) {
        PyErr_SetString(PyExc_TypeError, "_pt_map must be bytes covering the payload type");
        return -1;
    }
    pt_map = (const unsigned char *)PyBytes_AS_STRING(self->pt_map);
    pt = pt_map[p->marked_pt];
    if (pt == 0)
        return 0;
    admitted = admit(self, p);
    if (admitted <= 0)
        return admitted;
    if (self->vp8 != NULL && self->vp8 != Py_None) {
        PyObject *vp8 = Py_NewRef(self->vp8); /* the call may run Python that replaces the field */
        int kept = call_method(vp8, str_rewrite, (PyObject *[]){p->buf, p->picture}, 2);
        Py_DECREF(vp8);
        if (kept < 0)
            return -1;
        if (!kept) {
            self->seq_off = (self->seq_off - 1) & 0xFFFF;
            return 0;
        }
    }
    out_seq = (p->seq_value + self->seq_off) & 0xFFFF;
    out_ts = ((unsigned long)p->ts_value + self->ts_off) & 0xFFFFFFFFUL;
    p->data[1] = (unsigned char)pt;
    p->data[2] = (unsigned char)(out_seq >> 8);
    p->data[3] = (unsigned char)out_seq;
    p->data[4] = (unsigned char)(out_ts >> 24);
    p->data[5] = (unsigned char)(out_ts >> 16);
    p->data[6] = (unsigned char)(out_ts >> 8);
    p->data[7] = (unsigned char)out_ts;
    p->data[8] = (unsigned char)(self->ssrc >> 24);
    p->data[9] = (unsigned char)(self->ssrc >> 16);
    p->data[10] = (unsigned char)(self->ssrc >> 8);
    p->data[11] = (unsigned char)self->ssrc;
    twcc_seq = write_extensions(self, p);
    if (twcc_seq == -2 || send_packet(self, p, out_seq, twcc_seq) < 0)
        return -1;
    if (((out_seq - self->last_seq) & 0xFFFF) < 0x8000) {
        self->last_seq = (int)out_seq;
        self->last_ts = (unsigned int)out_ts;
        self->last_sent = p->now_value;
    }
    return 0;
}

/* The arguments of send_rtp / fan_out (buf, view, length, marked_pt, seq, ts, keyframe, layer). */
static int read_arguments(PyObject *const *args, Packet *p)
{
    if (!PyByteArray_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "buf must be a bytearray");
        return -1;
    }
    p->buf = args[0];
    p->data = (unsigned char *)PyByteArray_AS_STRING(args[0]);
    p->size = PyByteArray_GET_SIZE(args[0]);
    p->view = args[1];
    p->length = args[2];
    p->seq = args[4];
    p->ts = args[5];
    p->length_value = PyLong_AsSsize_t(args[2]);
    p->marked_pt = (int)PyLong_AsLong(args[3]);
    p->seq_value = PyLong_AsLong(args[4]);
    p->ts_value = PyLong_AsLong(args[5]);
    p->keyframe = PyObject_IsTrue(args[6]);
    p->layer = (int)PyLong_AsLong(args[7]);
    if (PyErr_Occurred() || p->keyframe < 0)
        return -1;
    if (p->size < 12 || p->marked_pt < 0 || p->marked_pt > 0xFF) {
        PyErr_SetString(PyExc_ValueError, "an RTP packet of at least 12 bytes, a payload type byte");
        return -1;
    }
    return 0;
}

static PyObject *core_send_rtp(Core *self, PyObject *const *args, Py_ssize_t nargs)
{
    Packet packet;
    int result;

    if (nargs != 8) {
        PyErr_SetString(PyExc_TypeError, "send_rtp() takes buf, view, length, marked_pt, seq, ts, keyframe, layer");
        return NULL;
    }
    if (read_arguments(args, &packet) < 0)
        return NULL;
    if (!self->active)
        Py_RETURN_NONE;
    if (self->producer == NULL) {
        PyErr_SetString(PyExc_TypeError, "a consumer core needs its producer and transport");
        return NULL;
    }
    if (read_producer(self->producer, &packet) < 0) {
        release_packet(&packet);
        return NULL;
    }
    result = forward(self, &packet);
    release_packet(&packet);
    if (result < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *fan_out(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    Packet packet;
    PyObject *consumers;
    Py_ssize_t count;
    int failed = 0;

    if (nargs != 10 || !PyTuple_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "fan_out() takes consumers (a tuple), buf, view, length, marked_pt, seq, ts,"
                                         " keyframe, layer and producer");
        return NULL;
    }
    if (read_arguments(args + 1, &packet) < 0)
        return NULL;
    consumers = args[0];
    count = PyTuple_GET_SIZE(consumers);
    if (count == 0)
        Py_RETURN_NONE;
    if (read_producer(args[9], &packet) < 0) {
        release_packet(&packet);
        return NULL;
    }
    Py_INCREF(consumers);
    for (Py_ssize_t i = 0; i < count && !failed; i++) {
        PyObject *consumer = PyTuple_GET_ITEM(consumers, i);
        if (PyObject_TypeCheck(consumer, &CoreType) && ((Core *)consumer)->direct) {
            failed = forward((Core *)consumer, &packet) < 0;
        } else {
            PyObject *stack[9] = {consumer};
            PyObject *result;
            memcpy(stack + 1, args + 1, 8 * sizeof(PyObject *));
            result = PyObject_VectorcallMethod(str_send_rtp, stack, 9, NULL);
            failed = result == NULL;
            Py_XDECREF(result);
        }
    }
    Py_DECREF(consumers);
    release_packet(&packet);
    if (failed)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *core_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    Core *self = (Core *)type->tp_alloc(type, 0);
    PyObject *method;

    if (self == NULL)
        return NULL;
    method = PyObject_GetAttr((PyObject *)type, str_send_rtp);
    if (method == NULL) {
        Py_DECREF(self);
        return NULL;
    }
    self->direct = method == core_send_rtp_descriptor;
    Py_DECREF(method);
    return (PyObject *)self;
}

static int core_traverse(Core *self, visitproc visit, void *arg)
{
    Py_VISIT(self->producer);
    Py_VISIT(self->transport);
    Py_VISIT(self->ext_map);
    Py_VISIT(self->rtx_buffer);
    Py_VISIT(self->pt_map);
    Py_VISIT(self->vp8);
    Py_VISIT(self->mid);
    return 0;
}

static int core_clear(Core *self)
{
    Py_CLEAR(self->producer);
    Py_CLEAR(self->transport);
    Py_CLEAR(self->ext_map);
    Py_CLEAR(self->rtx_buffer);
    Py_CLEAR(self->pt_map);
    Py_CLEAR(self->vp8);
    Py_CLEAR(self->mid);
    return 0;
}

static void core_dealloc(Core *self)
{
    /* a Python subclass's instance: subtype_dealloc releases the type after this */
    PyObject_GC_UnTrack(self);
    core_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

#define MEMBER(name, kind, field) {name, kind, offsetof(Core, field), 0, NULL}

static PyMemberDef core_members[] = {
    MEMBER("producer", T_OBJECT, producer),
    MEMBER("transport", T_OBJECT, transport),
    MEMBER("active", T_BOOL, active),
    MEMBER("ssrc", T_UINT, ssrc),
    MEMBER("priority", T_INT, priority),
    MEMBER("ext_map", T_OBJECT, ext_map),
    MEMBER("rtx_buffer", T_OBJECT, rtx_buffer),
    MEMBER("current_layer", T_INT, current_layer),
    MEMBER("target_layer", T_INT, target_layer),
    MEMBER("last_seq", T_INT, last_seq),
    MEMBER("last_ts", T_UINT, last_ts),
    MEMBER("last_sent", T_DOUBLE, last_sent),
    MEMBER("packets", T_LONGLONG, packets),
    MEMBER("bytes", T_LONGLONG, bytes),
    MEMBER("_pt_map", T_OBJECT, pt_map),
    MEMBER("_is_video", T_BOOL, is_video),
    MEMBER("_sync_needed", T_BOOL, sync_needed),
    MEMBER("_sync_seq", T_INT, sync_seq),
    MEMBER("_seq_off", T_INT, seq_off),
    MEMBER("_ts_off", T_UINT, ts_off),
    MEMBER("_vp8", T_OBJECT, vp8),
    MEMBER("_mid", T_OBJECT, mid),
    MEMBER("_writes_twcc", T_BOOL, writes_twcc),
    MEMBER("_silent_since", T_DOUBLE, silent_since),
    {NULL, 0, 0, 0, NULL},
};

static PyObject *core_target_silent(Core *self, PyObject *unused)
{
    PyObject *now;
    double value;
    int silent;

    if (self->producer == NULL) {
        PyErr_SetString(PyExc_TypeError, "a consumer core needs its producer");
        return NULL;
    }
    now = PyObject_GetAttr(self->producer, str_now);
    if (now == NULL)
        return NULL;
    value = PyFloat_AsDouble(now);
    Py_DECREF(now);
    if (value == -1.0 && PyErr_Occurred())
        return NULL;
    silent = target_silent(self, value);
    return silent < 0 ? NULL : PyBool_FromLong(silent);
}

static PyMethodDef core_methods[] = {
    {"send_rtp", (PyCFunction)(void (*)(void))core_send_rtp, METH_FASTCALL,
     "Hot path: rewrite the shared buffer's header for this consumer and send it."},
    {"_target_silent", (PyCFunction)core_target_silent, METH_NOARGS,
     "Whether the layer aimed at has been silent for LAYER_SILENCE, then SILENCE_CONFIRM more."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject CoreType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "kolabmeet.media.worker._consumer_core.ConsumerCore",
    .tp_basicsize = sizeof(Core),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "The hot-path state and forwarding rules of a consumer.",
    .tp_new = core_new,
    .tp_dealloc = (destructor)core_dealloc,
    .tp_traverse = (traverseproc)core_traverse,
    .tp_clear = (inquiry)core_clear,
    .tp_members = core_members,
    .tp_methods = core_methods,
};

static PyMethodDef module_methods[] = {
    {"fan_out", (PyCFunction)(void (*)(void))fan_out, METH_FASTCALL,
     "Hot path: one packet of producer to each of its consumers."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "kolabmeet.media.worker._consumer_core", NULL, -1, module_methods,
};

static int intern_names(void)
{
    struct { PyObject **slot; const char *text; } names[] = {
        {&str_send_rtp, "send_rtp"}, {&str_rewrite, "rewrite"}, {&str_store, "store"},
        {&str_next_twcc_seq, "next_twcc_seq"}, {&str_switch_layer, "_switch_layer"},
        {&str_fall_back, "_fall_back"}, {&str_sync, "_sync"}, {&str_layer_streams, "layer_streams"},
        {&str_last_time, "last_time"}, {&str_vp8_picture, "vp8_picture"}, {&str_now, "now"},
        {&str_mid_at, "mid_at"}, {&str_mid_two_byte, "mid_two_byte"}, {&str_twcc_at, "twcc_at"},
    };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if ((*names[i].slot = PyUnicode_InternFromString(names[i].text)) == NULL)
            return -1;
    }
    return 0;
}

PyMODINIT_FUNC PyInit__consumer_core(void)
{
    PyObject *module;

    if (intern_names() < 0 || (module = twin_module(&module_def, &CoreType)) == NULL)
        return NULL;
    core_send_rtp_descriptor = PyObject_GetAttr((PyObject *)&CoreType, str_send_rtp);
    if (core_send_rtp_descriptor == NULL || PyModule_AddIntConstant(module, "MID_SLOT", MID_SLOT) < 0
        || PyModule_AddIntConstant(module, "SYNC_WINDOW", SYNC_WINDOW) < 0
        || PyModule_AddObject(module, "LAYER_SILENCE", PyFloat_FromDouble(LAYER_SILENCE)) < 0
        || PyModule_AddObject(module, "SILENCE_CONFIRM", PyFloat_FromDouble(SILENCE_CONFIRM)) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
