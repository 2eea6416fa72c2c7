/*
 * mailbox.c - cross-thread hand-off into an event loop (see mailbox.h).
 *
 * uv_async_send coalesces wake-ups, so the callback drains the whole queue each time. The
 * queue is swapped out under the lock and run without it, so a callback may post again.
 */
#include "mailbox.h"

static void on_async(uv_async_t *async)
{
    struct pt_mailbox *mb = async->data;
    pthread_mutex_lock(&mb->lock);
    struct pt_mail *m = mb->head;
    mb->head = mb->tail = NULL;
    pthread_mutex_unlock(&mb->lock);
    while (m != NULL) {
        struct pt_mail *next = m->next;
        m->cb(m);
        m = next;
    }
}

int pt_mailbox_init(struct pt_mailbox *mb, uv_loop_t *loop)
{
    mb->head = mb->tail = NULL;
    mb->closed = 0;
    pthread_mutex_init(&mb->lock, NULL);
    mb->async.data = mb;
    return uv_async_init(loop, &mb->async, on_async);
}

void pt_mailbox_post(struct pt_mailbox *mb, struct pt_mail *mail, pt_mail_cb cb)
{
    mail->cb = cb;
    mail->next = NULL;
    pthread_mutex_lock(&mb->lock);
    if (mb->closed) { /* the loop is gone: the mail is dropped */
        pthread_mutex_unlock(&mb->lock);
        return;
    }
    if (mb->tail != NULL)
        mb->tail->next = mail;
    else
        mb->head = mail;
    mb->tail = mail;
    uv_async_send(&mb->async); /* under the lock: close cannot come in between */
    pthread_mutex_unlock(&mb->lock);
}

void pt_mailbox_close(struct pt_mailbox *mb)
{
    pthread_mutex_lock(&mb->lock);
    mb->closed = 1;
    pthread_mutex_unlock(&mb->lock);
    uv_close((uv_handle_t *)&mb->async, NULL);
}
