/*
 * mailbox.h - hands work to an event loop from any thread.
 *
 * A mailbox is a mutex-protected FIFO of messages plus a uv_async_t on the receiving loop.
 * Any thread may post; the loop thread runs each message's callback in posting order. The
 * mailbox is embedded in its owner and closed on the loop thread.
 */
#ifndef PT_MAILBOX_H
#define PT_MAILBOX_H

#include <pthread.h>
#include <uv.h>

struct pt_mail;
typedef void (*pt_mail_cb)(struct pt_mail *mail);

/* Embedded by the sender's object; borrowed by the mailbox from post until the callback. */
struct pt_mail {
    struct pt_mail *next;
    pt_mail_cb cb;
};

struct pt_mailbox {
    uv_async_t async;
    pthread_mutex_t lock;
    struct pt_mail *head, *tail;
    int closed; /* set by pt_mailbox_close; later posts are dropped */
};

int pt_mailbox_init(struct pt_mailbox *mb, uv_loop_t *loop);
/* Any thread. mail must stay valid until its callback runs on the mailbox's loop. After
 * pt_mailbox_close the mail is dropped (its callback never runs). */
void pt_mailbox_post(struct pt_mailbox *mb, struct pt_mail *mail, pt_mail_cb cb);
/* Loop thread; pending mails are dropped (their callbacks never run). */
void pt_mailbox_close(struct pt_mailbox *mb);

#endif
