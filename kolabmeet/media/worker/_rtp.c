/* The compiled twin of rtp.py's functions on the receive path (map_extensions, add_extension_slots,
 * extension_size, payload_bounds, is_two_byte_form, set_abs_send_time): the same signatures, the same
 * results, the same sentinels for malformed packets (the rules are explained there). */
#include "_rtp.h"

#define MAX_SLOTS 3

typedef struct {
    unsigned char *data;
    Py_ssize_t size; /* of the buffer: nothing is read or written past it */
    Py_buffer view;
} Bytes;

static int get_bytes(PyObject *obj, Bytes *b, int writable)
{
    if (PyObject_GetBuffer(obj, &b->view, writable ? PyBUF_WRITABLE : PyBUF_SIMPLE) < 0)
        return -1;
    b->data = b->view.buf;
    b->size = b->view.len;
    return 0;
}

/* The bytes of the datagram: `length` clipped to the buffer (the Python twin would raise on reading
 * past it; these only ever get lengths that fit). */
static Py_ssize_t clip(const Bytes *b, Py_ssize_t length)
{
    return length < 0 ? 0 : length > b->size ? b->size : length;
}

static int three_longs(PyObject *tuple, long *out, const char *what)
{
    if (!PyTuple_Check(tuple) || PyTuple_GET_SIZE(tuple) != 3) {
        PyErr_Format(PyExc_TypeError, "%s must be a tuple of three ints", what);
        return -1;
    }
    for (int i = 0; i < 3; i++) {
        out[i] = PyLong_AsLong(PyTuple_GET_ITEM(tuple, i));
        if (out[i] == -1 && PyErr_Occurred())
            return -1;
    }
    return 0;
}

static PyObject *map_extensions(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    Bytes buf, id_map;
    Py_ssize_t length;
    long wanted[3], found[3];
    int has_map;

    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "map_extensions() takes buf, length, id_map and wanted");
        return NULL;
    }
    length = PyLong_AsSsize_t(args[1]);
    if ((length == -1 && PyErr_Occurred()) || three_longs(args[3], wanted, "wanted") < 0)
        return NULL;
    has_map = args[2] != Py_None;
    if (get_bytes(args[0], &buf, has_map) < 0)
        return NULL;
    if (has_map) {
        if (get_bytes(args[2], &id_map, 0) < 0) {
            PyBuffer_Release(&buf.view);
            return NULL;
        }
        if (id_map.size < 256) {
            PyBuffer_Release(&id_map.view);
            PyBuffer_Release(&buf.view);
            PyErr_SetString(PyExc_ValueError, "id_map must have 256 bytes");
            return NULL;
        }
    }
    walk(buf.data, clip(&buf, length), has_map ? id_map.data : NULL, wanted, found);
    if (has_map)
        PyBuffer_Release(&id_map.view);
    PyBuffer_Release(&buf.view);
    return Py_BuildValue("(lll)", found[0], found[1], found[2]);
}

/* rtp.extension_size, on a packet whose block is known to be there. */
static int element_size(const unsigned char *buf, Py_ssize_t value_at)
{
    Py_ssize_t at = RTP_HEADER_SIZE + 4 * (buf[0] & 0x0F);
    if (((buf[at] << 8) | buf[at + 1]) == ONE_BYTE_PROFILE)
        return (buf[value_at - 1] & 0x0F) + 1;
    return buf[value_at - 1];
}

static PyObject *extension_size(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    Bytes buf;
    Py_ssize_t value_at;
    int size;

    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "extension_size() takes buf and value_at");
        return NULL;
    }
    value_at = PyLong_AsSsize_t(args[1]);
    if ((value_at == -1 && PyErr_Occurred()) || get_bytes(args[0], &buf, 0) < 0)
        return NULL;
    if (buf.size < 1 || value_at < 1 || value_at > buf.size
        || RTP_HEADER_SIZE + 4 * (buf.data[0] & 0x0F) + 2 > buf.size) {
        PyBuffer_Release(&buf.view);
        PyErr_SetString(PyExc_IndexError, "offset outside the packet");
        return NULL;
    }
    size = element_size(buf.data, value_at);
    PyBuffer_Release(&buf.view);
    return PyLong_FromLong(size);
}

/* One slot of add_extension_slots: its element's bytes (header and zeroed value) into `out`. */
static Py_ssize_t slot_element(long xid, long size, int kind, unsigned char *out)
{
    if (kind == 1) {
        if (xid < 0 || xid > 15 || size < 1 || size > 16)
            goto bad;
        out[0] = (unsigned char)((xid << 4) | (size - 1));
        memset(out + 1, 0, (size_t)size);
        return 1 + size;
    }
    if (xid < 0 || xid > 255 || size < 0 || size > 255)
        goto bad;
    out[0] = (unsigned char)xid;
    out[1] = (unsigned char)size;
    memset(out + 2, 0, (size_t)size);
    return 2 + size;
bad:
    PyErr_SetString(PyExc_ValueError, "a slot's id and size must fit its element form");
    return -1;
}

/* add_extension_slots on the buffer's bytes; the new length, -1, or -2 on error. */
static Py_ssize_t add_slots(Bytes *b, Py_ssize_t length, PyObject *slots, const long *found_at, Py_ssize_t capacity)
{
    static unsigned char tail[65536];
    unsigned char prefix[MAX_SLOTS * (2 + 255)], *buf = b->data;
    Py_ssize_t head, start, end, blanks[MAX_SLOTS][2], kept, pad, new_end, new_length, prefix_len = 0, pos;
    int profile = ONE_BYTE_PROFILE, kind = 1, nblanks = 0;

    head = csrc_end(buf, length);
    if (head < 0)
        return -1;
    start = end = head;
    if (buf[0] & 0x10) {
        profile = extension_block(buf, length, &start, &end);
        if (start < 0)
            return -1;
        kind = element_kind(profile);
        if (kind == 0) {
            profile = ONE_BYTE_PROFILE;
            kind = 1;
            start = end;
        }
    }
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(slots) && i < 3; i++) {
        PyObject *slot = PyTuple_GET_ITEM(slots, i);
        long xid, size;
        Py_ssize_t added;
        if (slot == Py_None)
            continue;
        if (!PyTuple_Check(slot) || PyTuple_GET_SIZE(slot) != 2) {
            PyErr_SetString(PyExc_TypeError, "a slot is (id, size) or None");
            return -2;
        }
        xid = PyLong_AsLong(PyTuple_GET_ITEM(slot, 0));
        size = PyLong_AsLong(PyTuple_GET_ITEM(slot, 1));
        if (PyErr_Occurred())
            return -2;
        if (found_at[i] >= 0) {
            int have = element_size(buf, found_at[i]);
            if (have == size)
                continue;
            blanks[nblanks][0] = found_at[i] - kind;
            blanks[nblanks][1] = found_at[i] + have;
            nblanks++;
        }
        added = slot_element(xid, size, kind, prefix + prefix_len);
        if (added < 0)
            return -2;
        prefix_len += added;
    }
    kept = end - start;
    pad = (4 - (prefix_len + kept) % 4) % 4;
    new_end = head + 4 + prefix_len + kept + pad;
    new_length = new_end + length - end;
    if (new_length > capacity || new_length > b->size || length - start > (Py_ssize_t)sizeof(tail))
        return -1;
    for (int i = 0; i < nblanks; i++)
        memset(buf + blanks[i][0], 0, (size_t)(blanks[i][1] - blanks[i][0]));
    memcpy(tail, buf + start, (size_t)(length - start)); /* source and destination overlap */
    buf[head] = (unsigned char)(profile >> 8);
    buf[head + 1] = (unsigned char)profile;
    buf[head + 2] = (unsigned char)((new_end - head - 4) / 4 >> 8);
    buf[head + 3] = (unsigned char)((new_end - head - 4) / 4);
    pos = head + 4 + prefix_len;
    memcpy(buf + head + 4, prefix, (size_t)prefix_len);
    memcpy(buf + pos, tail, (size_t)kept);
    memset(buf + pos + kept, 0, (size_t)pad);
    memcpy(buf + new_end, tail + kept, (size_t)(length - end));
    buf[0] |= 0x10;
    return new_length;
}

static PyObject *add_extension_slots(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    Bytes buf;
    Py_ssize_t length, capacity, result;
    long found_at[3] = {-1, -1, -1};

    if (nargs != 5) {
        PyErr_SetString(PyExc_TypeError, "add_extension_slots() takes buf, length, slots, found_at and capacity");
        return NULL;
    }
    length = PyLong_AsSsize_t(args[1]);
    capacity = PyLong_AsSsize_t(args[4]);
    if (PyErr_Occurred())
        return NULL;
    if (!PyTuple_Check(args[2]) || !PyTuple_Check(args[3]) || PyTuple_GET_SIZE(args[2]) > MAX_SLOTS
        || PyTuple_GET_SIZE(args[3]) < PyTuple_GET_SIZE(args[2])) {
        PyErr_SetString(PyExc_TypeError, "slots and found_at must be tuples, at most three slots");
        return NULL;
    }
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(args[2]); i++) {
        found_at[i] = PyLong_AsLong(PyTuple_GET_ITEM(args[3], i));
        if (found_at[i] == -1 && PyErr_Occurred())
            return NULL;
    }
    if (get_bytes(args[0], &buf, 1) < 0)
        return NULL;
    result = add_slots(&buf, clip(&buf, length), args[2], found_at, capacity);
    PyBuffer_Release(&buf.view);
    return result == -2 ? NULL : PyLong_FromSsize_t(result);
}

static PyObject *payload_bounds(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    Bytes b;
    Py_ssize_t length, pos, start, end;

    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "payload_bounds() takes buf and length");
        return NULL;
    }
    length = PyLong_AsSsize_t(args[1]);
    if ((length == -1 && PyErr_Occurred()) || get_bytes(args[0], &b, 0) < 0)
        return NULL;
    length = clip(&b, length);
    pos = csrc_end(b.data, length);
    end = length;
    if (pos >= 0 && b.data[0] & 0x10) {
        extension_block(b.data, length, &start, &pos);
    }
    if (pos >= 0 && b.data[0] & 0x20) {
        int padding = b.data[length - 1];
        if (padding == 0 || padding > length - pos)
            pos = -1;
        else
            end -= padding;
    }
    PyBuffer_Release(&b.view);
    if (pos < 0)
        return Py_BuildValue("(ii)", -1, -1);
    return Py_BuildValue("(nn)", pos, end);
}

static PyObject *is_two_byte_form(PyObject *module, PyObject *arg)
{
    Bytes b;
    Py_ssize_t at;
    int two;

    if (get_bytes(arg, &b, 0) < 0)
        return NULL;
    at = b.size > 0 ? RTP_HEADER_SIZE + 4 * (b.data[0] & 0x0F) : b.size;
    if (at >= b.size) {
        PyBuffer_Release(&b.view);
        PyErr_SetString(PyExc_IndexError, "no header extension in the packet");
        return NULL;
    }
    two = b.data[at] != 0xBE;
    PyBuffer_Release(&b.view);
    return PyLong_FromLong(two);
}

static PyObject *set_abs_send_time(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    Bytes b;
    Py_ssize_t offset;
    double seconds;
    unsigned long value;

    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "set_abs_send_time() takes buf, offset and seconds");
        return NULL;
    }
    offset = PyLong_AsSsize_t(args[1]);
    seconds = PyFloat_AsDouble(args[2]);
    if (PyErr_Occurred() || get_bytes(args[0], &b, 1) < 0)
        return NULL;
    if (offset < 0 || offset + 3 > b.size) {
        PyBuffer_Release(&b.view);
        PyErr_SetString(PyExc_IndexError, "abs-send-time outside the packet");
        return NULL;
    }
    if (!(seconds * 262144.0 > -9.2e18 && seconds * 262144.0 < 9.2e18)) {
        PyBuffer_Release(&b.view);
        PyErr_SetString(PyExc_ValueError, "seconds out of range");
        return NULL;
    }
    /* int(seconds * 262144.0) & 0xFFFFFF: truncation towards zero, then the low 24 bits */
    value = (unsigned long)(long long)(seconds * 262144.0) & 0xFFFFFF;
    b.data[offset] = (unsigned char)(value >> 16);
    b.data[offset + 1] = (unsigned char)(value >> 8);
    b.data[offset + 2] = (unsigned char)value;
    PyBuffer_Release(&b.view);
    Py_RETURN_NONE;
}

static PyMethodDef module_methods[] = {
    {"map_extensions", (PyCFunction)(void (*)(void))map_extensions, METH_FASTCALL,
     "One pass over the extension block: ids mapped, and the value offsets of three wanted ids."},
    {"add_extension_slots", (PyCFunction)(void (*)(void))add_extension_slots, METH_FASTCALL,
     "Give the packet an element (id, size) for each slot it lacks; the new length or -1."},
    {"extension_size", (PyCFunction)(void (*)(void))extension_size, METH_FASTCALL,
     "Size of the element whose value starts at value_at."},
    {"payload_bounds", (PyCFunction)(void (*)(void))payload_bounds, METH_FASTCALL,
     "(payload start, payload end) excluding CSRCs, extension and padding; (-1, -1) if malformed."},
    {"is_two_byte_form", (PyCFunction)is_two_byte_form, METH_O,
     "1 when the packet's header extension is in the two-byte form, 0 for the one-byte form."},
    {"set_abs_send_time", (PyCFunction)(void (*)(void))set_abs_send_time, METH_FASTCALL,
     "Write a 24-bit 6.18 fixed-point abs-send-time value at offset."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "kolabmeet.media.worker._rtp", NULL, -1, module_methods,
};

PyMODINIT_FUNC PyInit__rtp(void)
{
    return PyModule_Create(&module_def);
}
