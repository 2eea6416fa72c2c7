/*
 * committer.h - the single writer of replicated state.
 *
 * Every change to replicated metadata is an encoded portolan.Command handed to the committer,
 * which owns one thread and applies commands in one total order through pt_fsm_apply (the
 * only function that writes replicated column families). A single region applies proposals
 * directly with group commit: all proposals that queued up while the previous batch was
 * being applied share one WAL fsync before any of them is acknowledged. A multi-region
 * cluster puts Raft in front of the same apply function; callers do not change.
 */
#ifndef PT_COMMITTER_H
#define PT_COMMITTER_H

#include <stddef.h>
#include <stdint.h>

#include "mailbox.h"

struct pt_metastore;
struct pt_committer;
struct pt_proposal;

typedef void (*pt_proposal_cb)(struct pt_proposal *p);

/* Embedded in (or allocated by) the proposer, which owns it; borrowed by the committer from
 * pt_committer_propose until done_cb runs on the reply_to mailbox's loop. */
struct pt_proposal {
    struct pt_mail mail;
    struct pt_proposal *next;
    struct pt_mailbox *reply_to;
    pt_proposal_cb done_cb;
    void *buf; /* encoded Command: ownership moves to the committer on propose (free()) */
    size_t len;
    int status;     /* out: 0, the command's precondition error, or an I/O error */
    uint64_t index; /* out: log index the command was applied at */
};

/* Starts the committer thread. ms is borrowed and must outlive the committer. */
int pt_committer_start(struct pt_metastore *ms, struct pt_committer **out);
/* Any thread. Never fails once started; done_cb always runs exactly once. */
void pt_committer_propose(struct pt_committer *c, struct pt_proposal *p);
/* Applies what is queued, stops the thread and frees c. */
void pt_committer_stop(struct pt_committer *c);

#endif
