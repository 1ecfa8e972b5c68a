/*
 * ds_rdpdisp.c - the display-control channel of one RDP session (see
 * ds_rdpdisp.h).
 */
#include "ds_rdpdisp.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <freerdp/server/disp.h>

#include "dp_time.h"
#include "ds_session.h"

struct ds_rdpdisp {
    HANDLE vcm;
    freerdp_peer *peer;
    DispServerContext *disp;
    int efd;
    int opened;

    /* shared with FreeRDP's reader thread of the channel */
    pthread_mutex_t lock;
    UINT32 channel_id; /* 0 until assigned */
    int want_w, want_h;
    long long want_ms; /* when the latest layout came; 0: none waiting */
};

/* On FreeRDP's thread: the client's new layout. One monitor: the primary
 * (or the first) gives the size. */
static UINT ds_rdpdisp_on_layout(DispServerContext *disp,
                                 const DISPLAY_CONTROL_MONITOR_LAYOUT_PDU *pdu)
{
    struct ds_rdpdisp *p = disp->custom;
    const DISPLAY_CONTROL_MONITOR_LAYOUT *m = NULL;
    uint64_t one = 1;
    UINT32 i;

    for (i = 0; i < pdu->NumMonitors; i++)
        if (!m || (pdu->Monitors[i].Flags & DISPLAY_CONTROL_MONITOR_PRIMARY))
            m = &pdu->Monitors[i];
    if (!m || m->Width < DS_RDPDISP_MIN || m->Width > DS_RDPDISP_MAX ||
        m->Height < DS_RDPDISP_MIN || m->Height > DS_RDPDISP_MAX)
        return CHANNEL_RC_OK; /* FreeRDP checked already; ignore */
    pthread_mutex_lock(&p->lock);
    p->want_w = (int)m->Width & ~1; /* even: what guests' modes allow */
    p->want_h = (int)m->Height;
    p->want_ms = dp_time_now_ms();
    pthread_mutex_unlock(&p->lock);
    if (write(p->efd, &one, sizeof(one)) < 0) {
        /* cannot overflow here */
    }
    return CHANNEL_RC_OK;
}

static BOOL ds_rdpdisp_on_id(DispServerContext *disp, UINT32 channel_id)
{
    struct ds_rdpdisp *p = disp->custom;

    pthread_mutex_lock(&p->lock);
    p->channel_id = channel_id;
    pthread_mutex_unlock(&p->lock);
    return TRUE;
}

int ds_rdpdisp_new(struct ds_rdpdisp **out, HANDLE vcm, freerdp_peer *peer)
{
    struct ds_rdpdisp *p = calloc(1, sizeof(*p));

    *out = NULL;
    if (!p)
        return -ENOMEM;
    p->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (p->efd < 0) {
        free(p);
        return -ENOMEM;
    }
    pthread_mutex_init(&p->lock, NULL);
    p->vcm = vcm;
    p->peer = peer;
    *out = p;
    return 0;
}

void ds_rdpdisp_free(struct ds_rdpdisp *p)
{
    if (!p)
        return;
    if (p->disp) {
        p->disp->Close(p->disp);
        disp_server_context_free(p->disp);
    }
    close(p->efd);
    pthread_mutex_destroy(&p->lock);
    free(p);
}

int ds_rdpdisp_open(struct ds_rdpdisp *p)
{
    DispServerContext *disp;

    if (p->opened)
        return p->disp ? 0 : -EIO;
    p->opened = 1;
    disp = disp_server_context_new(p->vcm);
    if (!disp)
        return -EIO;
    disp->custom = p;
    disp->rdpcontext = p->peer->context;
    disp->MaxNumMonitors = 1;
    disp->MaxMonitorAreaFactorA = DS_RDPDISP_MAX;
    disp->MaxMonitorAreaFactorB = DS_RDPDISP_MAX;
    disp->DispMonitorLayout = ds_rdpdisp_on_layout;
    disp->ChannelIdAssigned = ds_rdpdisp_on_id;
    if (disp->Open(disp) != CHANNEL_RC_OK) {
        disp_server_context_free(disp);
        return -EIO;
    }
    p->disp = disp;
    return 0;
}

void ds_rdpdisp_created(struct ds_rdpdisp *p, UINT32 channel_id, INT32 status)
{
    UINT32 mine;

    if (!p->disp)
        return;
    pthread_mutex_lock(&p->lock);
    mine = p->channel_id;
    pthread_mutex_unlock(&p->lock);
    if (channel_id != mine)
        return;
    if (status < 0) {
        ds_session_log("the client has no display control: fixed size");
        return;
    }
    if (p->disp->DisplayControlCaps(p->disp) != CHANNEL_RC_OK)
        ds_session_log("cannot send the display-control caps");
}

int ds_rdpdisp_fd(const struct ds_rdpdisp *p)
{
    return p->efd;
}

int ds_rdpdisp_pending(struct ds_rdpdisp *p)
{
    int r;

    pthread_mutex_lock(&p->lock);
    r = p->want_ms != 0;
    pthread_mutex_unlock(&p->lock);
    return r;
}

int ds_rdpdisp_due(struct ds_rdpdisp *p, long long now_ms, int *width,
                   int *height)
{
    uint64_t n;
    int due = 0;

    if (read(p->efd, &n, sizeof(n)) < 0) {
        /* EAGAIN: no new layout since the last call */
    }
    pthread_mutex_lock(&p->lock);
    if (p->want_ms && now_ms - p->want_ms >= DS_RDPDISP_SETTLE_MS) {
        *width = p->want_w;
        *height = p->want_h;
        p->want_ms = 0;
        due = 1;
    }
    pthread_mutex_unlock(&p->lock);
    return due;
}
