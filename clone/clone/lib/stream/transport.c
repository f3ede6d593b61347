/* transport — the choice of backend for a URL (transport.h). */
#include "stream/transport.h"

const ktransport *ktransport_for(const char *url) {
    static const ktransport *const backends[] = {&kt_zmq, &kt_fd}; /* fd takes the rest */
    for (size_t i = 0; i < sizeof backends / sizeof *backends; i++)
        if (url && backends[i]->accepts(url)) return backends[i];
    return &kt_fd;
}
