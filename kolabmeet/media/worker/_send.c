/* The compiled twin of kolabmeet/media/worker/send.py: the same functions, the same results.
 *
 * The last step of sending an RTP packet to a UDP peer (copy into the send buffer, map the
 * header extension ids, SRTP protect in place, sendto) in one call, without the Python
 * calls, argument parsing and address conversion of the pure-Python path. libsrtp is
 * reached through the function pointer pylibsrtp's cffi binding exports (see use_srtp),
 * so nothing is linked here but Python itself.
 */
#include "_rtp.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <structmember.h>

#define MAX_TRAILER (16 + 4) /* as srtp.MAX_TRAILER */

typedef int (*protect_fn)(void *ctx, void *rtp, int *len);

static protect_fn srtp_protect_fn = NULL;
static PyObject *str_ctx_address, *str_data;

/* rtp.rewrite_extension_ids: every element id mapped through id_map (256 bytes); a mapped id
 * of 0 (or, one-byte form, above 14) turns the element into zero padding. */
static void rewrite_extension_ids(unsigned char *buf, Py_ssize_t length, const unsigned char *id_map)
{
    static const long none_wanted[3] = {0, 0, 0};
    long found[3];

    walk(buf, length, id_map, none_wanted, found);
}

/* Copy the packet in `view` into out's buffer (up to out.limit) and map its extension ids:
 * the length, -1 when it does not fit, -3 with an exception set. */
static Py_ssize_t copy_mapped(PyObject *out, const Py_buffer *view, PyObject *ext_map, unsigned char **where)
{
    PyObject *data;
    Py_buffer map;
    unsigned char *buf;
    Py_ssize_t length = view->len;

    data = PyObject_GetAttr(out, str_data);
    if (data == NULL)
        return -3;
    if (!PyByteArray_Check(data)) {
        Py_DECREF(data);
        PyErr_SetString(PyExc_TypeError, "out.data must be a bytearray");
        return -3;
    }
    buf = (unsigned char *)PyByteArray_AS_STRING(data);
    if (length > PyByteArray_GET_SIZE(data) - MAX_TRAILER || length > INT_MAX - MAX_TRAILER) {
        Py_DECREF(data);
        return -1;
    }
    Py_DECREF(data); /* out keeps it (and its export) alive */
    memcpy(buf, view->buf, (size_t)length);
    if (ext_map != Py_None && length > 0 && buf[0] & 0x10) {
        if (PyObject_GetBuffer(ext_map, &map, PyBUF_SIMPLE) < 0)
            return -3;
        if (map.len < 256) {
            PyBuffer_Release(&map);
            PyErr_SetString(PyExc_ValueError, "ext_map must have 256 bytes");
            return -3;
        }
        rewrite_extension_ids(buf, length, map.buf);
        PyBuffer_Release(&map);
    }
    *where = buf;
    return length;
}

/* send.protect_into; also hands back where the protected packet is. */
static Py_ssize_t protect(PyObject *session, PyObject *out, PyObject *packet, PyObject *ext_map,
                          unsigned char **where)
{
    PyObject *address;
    void *ctx;
    Py_buffer view;
    Py_ssize_t length;
    unsigned char *buf;
    int n;

    address = PyObject_GetAttr(session, str_ctx_address);
    if (address == NULL)
        return -3;
    ctx = PyLong_AsVoidPtr(address);
    Py_DECREF(address);
    if (ctx == NULL)
        return PyErr_Occurred() ? -3 : -1;
    if (PyObject_GetBuffer(packet, &view, PyBUF_SIMPLE) < 0)
        return -3;
    length = copy_mapped(out, &view, ext_map, &buf);
    PyBuffer_Release(&view);
    if (length < 0)
        return length;
    n = (int)length;
    if (srtp_protect_fn == NULL || srtp_protect_fn(ctx, buf, &n) != 0)
        return -1;
    *where = buf;
    return n;
}

/* protect() from a call's (session, out, packet, ext_map); -3 with TypeError for other arguments. */
static Py_ssize_t protect_call(const char *name, PyObject *const *args, Py_ssize_t nargs, unsigned char **where)
{
    if (nargs != 4) {
        PyErr_Format(PyExc_TypeError, "%s() takes session, out, packet and ext_map", name);
        return -3;
    }
    return protect(args[0], args[1], args[2], args[3], where);
}

static PyObject *protect_into(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    unsigned char *where;
    Py_ssize_t n = protect_call("protect_into", args, nargs, &where);

    return n == -3 ? NULL : PyLong_FromSsize_t(n);
}

static PyObject *use_srtp(PyObject *module, PyObject *address)
{
    void *fn = PyLong_AsVoidPtr(address);
    if (fn == NULL && PyErr_Occurred())
        return NULL;
    srtp_protect_fn = (protect_fn)fn;
    Py_RETURN_NONE;
}

typedef struct {
    PyObject_HEAD
    PyObject *sock;
    PyObject *out; /* the PacketBuffer send_rtp copies into when ids change, or None */
    unsigned long long bytes_sent;
    struct sockaddr_storage addr;
    socklen_t addrlen;
    char connected; /* the socket is connected to addr: send without an address */
} UdpSender;

static int sender_init(UdpSender *self, PyObject *args, PyObject *kwargs)
{
    static char *names[] = {"sock", "address", "out", "connect", NULL};
    PyObject *sock, *family_obj, *out = Py_None;
    const char *host;
    int port, family, connect_it = 0, fd;

    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O(si)|Op:UdpSender", names, &sock, &host, &port, &out,
                                     &connect_it))
        return -1;
    family_obj = PyObject_GetAttrString(sock, "family");
    if (family_obj == NULL)
        return -1;
    family = PyLong_AsLong(family_obj);
    Py_DECREF(family_obj);
    if (family == -1 && PyErr_Occurred())
        return -1;
    if (port < 0 || port > 65535) {
        PyErr_SetString(PyExc_ValueError, "port must be 0-65535");
        return -1;
    }
    memset(&self->addr, 0, sizeof(self->addr));
    if (family == AF_INET) {
        struct sockaddr_in *in = (struct sockaddr_in *)&self->addr;
        in->sin_family = AF_INET;
        in->sin_port = htons((uint16_t)port);
        if (inet_pton(AF_INET, host, &in->sin_addr) != 1)
            goto bad_host;
        self->addrlen = sizeof(*in);
    } else if (family == AF_INET6) {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&self->addr;
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)port);
        if (inet_pton(AF_INET6, host, &in6->sin6_addr) != 1)
            goto bad_host;
        self->addrlen = sizeof(*in6);
    } else {
        PyErr_SetString(PyExc_ValueError, "UdpSender needs an AF_INET or AF_INET6 socket");
        return -1;
    }
    self->connected = 0;
    if (connect_it && port != 0) {
        fd = PyObject_AsFileDescriptor(sock);
        if (fd < 0)
            return -1;
        self->connected = connect(fd, (struct sockaddr *)&self->addr, self->addrlen) == 0;
    }
    Py_INCREF(sock);
    Py_XSETREF(self->sock, sock);
    Py_INCREF(out);
    Py_XSETREF(self->out, out);
    return 0;
bad_host:
    PyErr_Format(PyExc_ValueError, "%s is not a numeric address of the socket's family", host);
    return -1;
}

/* One datagram; False when it could not go (would block, closed socket, any error). */
static int send_datagram(UdpSender *self, const void *data, Py_ssize_t length)
{
    int fd = self->sock == NULL ? -1 : PyObject_AsFileDescriptor(self->sock); /* -1 once closed */
    ssize_t sent;

    if (fd < 0) {
        PyErr_Clear();
        return 0;
    }
    do {
        sent = self->connected ? send(fd, data, (size_t)length, 0)
                               : sendto(fd, data, (size_t)length, 0, (struct sockaddr *)&self->addr, self->addrlen);
    } while (sent < 0 && errno == EINTR);
    return sent >= 0;
}

static PyObject *sender_send(UdpSender *self, PyObject *data)
{
    Py_buffer view;
    int ok;

    if (PyObject_GetBuffer(data, &view, PyBUF_SIMPLE) < 0)
        return NULL;
    ok = send_datagram(self, view.buf, view.len);
    PyBuffer_Release(&view);
    return PyBool_FromLong(ok);
}

static PyObject *sender_send_srtp(UdpSender *self, PyObject *const *args, Py_ssize_t nargs)
{
    unsigned char *where;
    Py_ssize_t n = protect_call("send_srtp", args, nargs, &where);

    if (n == -3)
        return NULL;
    if (n >= 0 && !send_datagram(self, where, n))
        n = -2;
    return PyLong_FromSsize_t(n);
}

/* send.PyUdpSender.send_rtp: (view, ext_map=None, priority, paced, now, twcc_seq), the last four
 * a transport's send step takes and a plain one has no use for. */
static PyObject *sender_send_rtp(UdpSender *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *ext_map = nargs > 1 ? args[1] : Py_None;
    Py_ssize_t given = nargs + (kwnames == NULL ? 0 : PyTuple_GET_SIZE(kwnames)), length;
    Py_buffer view;
    unsigned char *buf;
    int ok;

    if (nargs < 1 || given > 6) {
        PyErr_SetString(PyExc_TypeError, "send_rtp() takes view, ext_map, priority, paced, now, twcc_seq");
        return NULL;
    }
    for (Py_ssize_t i = 0; kwnames != NULL && i < PyTuple_GET_SIZE(kwnames); i++) {
        PyObject *name = PyTuple_GET_ITEM(kwnames, i);
        if (PyUnicode_CompareWithASCIIString(name, "ext_map") == 0) {
            ext_map = args[nargs + i];
        } else if (PyUnicode_CompareWithASCIIString(name, "priority") != 0
                   && PyUnicode_CompareWithASCIIString(name, "paced") != 0
                   && PyUnicode_CompareWithASCIIString(name, "now") != 0
                   && PyUnicode_CompareWithASCIIString(name, "twcc_seq") != 0) {
            PyErr_Format(PyExc_TypeError, "send_rtp() got an unexpected keyword argument '%U'", name);
            return NULL;
        }
    }
    if (PyObject_GetBuffer(args[0], &view, PyBUF_SIMPLE) < 0)
        return NULL;
    if (ext_map != Py_None && view.len > 0 && ((unsigned char *)view.buf)[0] & 0x10) {
        if (self->out == NULL || self->out == Py_None) {
            PyBuffer_Release(&view);
            PyErr_SetString(PyExc_ValueError, "mapping extension ids needs the sender's out buffer");
            return NULL;
        }
        length = copy_mapped(self->out, &view, ext_map, &buf);
        PyBuffer_Release(&view);
        if (length == -3)
            return NULL;
        ok = length >= 0 && send_datagram(self, buf, length);
    } else {
        length = view.len;
        ok = send_datagram(self, view.buf, length);
        PyBuffer_Release(&view);
    }
    if (ok)
        self->bytes_sent += (unsigned long long)length;
    return PyBool_FromLong(ok);
}

static int sender_traverse(UdpSender *self, visitproc visit, void *arg)
{
    Py_VISIT(self->sock);
    Py_VISIT(self->out);
    return 0;
}

static int sender_clear(UdpSender *self)
{
    Py_CLEAR(self->sock);
    Py_CLEAR(self->out);
    return 0;
}

static void sender_dealloc(UdpSender *self)
{
    PyObject_GC_UnTrack(self);
    sender_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMethodDef sender_methods[] = {
    {"send", (PyCFunction)sender_send, METH_O, "Send one datagram; False when it could not go."},
    {"send_srtp", (PyCFunction)(void (*)(void))sender_send_srtp, METH_FASTCALL,
     "protect_into, then send: the protected length, -1 if it could not be protected, -2 if not sent."},
    {"send_rtp", (PyCFunction)(void (*)(void))sender_send_rtp, METH_FASTCALL | METH_KEYWORDS,
     "A plain transport's send step: the packet, its extension ids mapped in out; False if not sent."},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef sender_members[] = {
    {"bytes_sent", T_ULONGLONG, offsetof(UdpSender, bytes_sent), READONLY, "Bytes send_rtp has sent."},
    {"connected", T_BOOL, offsetof(UdpSender, connected), READONLY, "Whether the socket is connected to the address."},
    {NULL, 0, 0, 0, NULL},
};

static PyTypeObject UdpSenderType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "kolabmeet.media.worker._send.UdpSender",
    .tp_basicsize = sizeof(UdpSender),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "Datagrams to one UDP address through one socket.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)sender_init,
    .tp_dealloc = (destructor)sender_dealloc,
    .tp_traverse = (traverseproc)sender_traverse,
    .tp_clear = (inquiry)sender_clear,
    .tp_methods = sender_methods,
    .tp_members = sender_members,
};

static PyMethodDef module_methods[] = {
    {"protect_into", (PyCFunction)(void (*)(void))protect_into, METH_FASTCALL,
     "Copy packet into out, map its extension ids, SRTP-protect it there: the new length, or -1."},
    {"use_srtp", (PyCFunction)use_srtp, METH_O, "The address of libsrtp's srtp_protect."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "kolabmeet.media.worker._send", NULL, -1, module_methods,
};

PyMODINIT_FUNC PyInit__send(void)
{
    PyObject *module;

    str_ctx_address = PyUnicode_InternFromString("ctx_address");
    str_data = PyUnicode_InternFromString("data");
    if (str_ctx_address == NULL || str_data == NULL)
        return NULL;
    module = twin_module(&module_def, &UdpSenderType);
    if (module == NULL || PyModule_AddIntConstant(module, "MAX_TRAILER", MAX_TRAILER) < 0) {
        Py_XDECREF(module);
        return NULL;
    }
    return module;
}
