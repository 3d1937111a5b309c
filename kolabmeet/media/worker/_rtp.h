/* The RTP header extension walk (rtp.py's rules) that the compiled twins share. */
#ifndef KOLABMEET_RTP_H
#define KOLABMEET_RTP_H

#include "_twin.h"

#define RTP_HEADER_SIZE 12
#define ONE_BYTE_PROFILE 0xBEDE
#define TWO_BYTE_PROFILE 0x1000

static inline Py_ssize_t csrc_end(const unsigned char *buf, Py_ssize_t length)
{
    Py_ssize_t end;

    if (length < RTP_HEADER_SIZE || buf[0] >> 6 != 2)
        return -1;
    end = RTP_HEADER_SIZE + 4 * (buf[0] & 0x0F);
    return end <= length ? end : -1;
}

/* rtp.extension_block: the profile, and the data's start and end (-1, -1 without a block). */
static inline int extension_block(const unsigned char *buf, Py_ssize_t length, Py_ssize_t *start, Py_ssize_t *end)
{
    Py_ssize_t pos = csrc_end(buf, length);

    *start = *end = -1;
    if (pos < 0 || !(buf[0] & 0x10) || pos + 4 > length)
        return 0;
    *end = pos + 4 + 4 * ((buf[pos + 2] << 8) | buf[pos + 3]);
    if (*end > length) {
        *end = -1;
        return 0;
    }
    *start = pos + 4;
    return (buf[pos] << 8) | buf[pos + 1];
}

static inline int element_kind(int profile)
{
    if (profile == ONE_BYTE_PROFILE)
        return 1;
    return (profile & 0xFFF0) == TWO_BYTE_PROFILE ? 2 : 0;
}

/* map_extensions' walk; `id_map` NULL keeps the ids. */
static inline void walk(unsigned char *buf, Py_ssize_t length, const unsigned char *id_map, const long *wanted, long *found)
{
    Py_ssize_t pos, end;
    int kind = element_kind(extension_block(buf, length, &pos, &end));

    found[0] = found[1] = found[2] = -1;
    while (kind && pos < end) {
        unsigned char b = buf[pos];
        Py_ssize_t value, stop;
        long xid;
        if (b == 0) {
            pos++;
            continue;
        }
        if (kind == 1) {
            if (b >> 4 == 15)
                break;
            xid = b >> 4;
            value = pos + 1;
            stop = pos + 2 + (b & 0x0F);
        } else {
            if (pos + 2 > end)
                break;
            xid = b;
            value = pos + 2;
            stop = pos + 2 + buf[pos + 1];
        }
        if (stop > end)
            break;
        if (id_map != NULL) {
            unsigned char new_id = id_map[xid];
            if (new_id == 0 || (kind == 1 && new_id > 14)) {
                memset(buf + pos, 0, (size_t)(stop - pos));
                pos = stop;
                continue;
            }
            buf[pos] = kind == 1 ? (unsigned char)((new_id << 4) | (b & 0x0F)) : new_id;
            xid = new_id;
        }
        if (xid == wanted[0])
            found[0] = value;
        else if (xid == wanted[1])
            found[1] = value;
        else if (xid == wanted[2])
            found[2] = value;
        pos = stop;
    }
}

#endif
