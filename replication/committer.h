/*
 * committer.h - the single writer of replicated state, and the HTTP workers' door to it.
 *
 * Every change to replicated metadata is an encoded portolan.Command handed to the committer,
 * which owns one thread and applies commands in one total order through the FSM (fsm.h: the
 * only code that writes replicated column families). Two back-ends, same callers:
 * - single region: proposals are applied directly with group commit: all proposals that
 *   queued up while the previous group was written share one synced write, so each is on
 *   disk before it is visible and visible before it is acknowledged. A failed group is
 *   answered with its error and leaves nothing visible; the region then refuses every
 *   proposal (PT_E_UNAVAILABLE) until restart;
 * - cluster: the thread runs Raft (raft_node.c); proposals go through the Raft log, reads
 *   that must be linearizable get a read index first, and the admin API reads the status.
 */
#ifndef PT_COMMITTER_H
#define PT_COMMITTER_H

#include <stddef.h>
#include <stdint.h>

#include "mailbox.h"

struct pt_metastore;
struct pt_committer;
struct pt_proposal;
struct pt_raft_node_config;

typedef void (*pt_proposal_cb)(struct pt_proposal *p);

enum pt_job_kind {
    PT_JOB_PROPOSE = 0, /* apply buf (an encoded Command) */
    PT_JOB_READ_INDEX,  /* wait until this region may answer a linearizable read */
    PT_JOB_STATUS,      /* text = this region's status as JSON */
    PT_JOB_MEMBERS,     /* text = the cluster's configuration and this region's status */
    PT_JOB_ADD,         /* cluster: add region target, buf a struct pt_region_rec, with role */
    PT_JOB_REMOVE,      /* cluster: remove region target */
    PT_JOB_TRANSFER,    /* cluster: hand leadership to target (0 = any voter) */
    PT_JOB_REPLICATION, /* text = this region's blob replication status as JSON */
    PT_JOB_CATCH_UP,    /* READ_INDEX that ends early once buf ("repo\0digest", len bytes)
                           is a blob link or a manifest of that repo */
    PT_JOB_BLOB_FEED,   /* out = a struct pt_blob_feed reference for digest buf (len bytes,
                           NUL-terminated), size target: a blob this region lacks */
};

/* Embedded in (or allocated by) the submitter, which owns it; borrowed by the committer from
 * pt_committer_submit until done_cb runs on the reply_to mailbox's loop. */
struct pt_proposal {
    struct pt_mail mail;
    struct pt_proposal *next;
    struct pt_mailbox *reply_to;
    pt_proposal_cb done_cb;
    int kind;  /* enum pt_job_kind */
    void *buf; /* PROPOSE: encoded Command; ADD: struct pt_region_rec; moves to the committer */
    size_t len;
    int status;      /* out: 0, the command's precondition error, or PT_E_* */
    uint64_t index;  /* out: log index the command was applied at / the read point */
    char *text;      /* out (STATUS, MEMBERS, REPLICATION): owned by the submitter once done
                        (free()) */
    void *out;       /* out (BLOB_FEED): owned by the submitter once done */
    uint64_t target; /* ADD, REMOVE, TRANSFER: the region's raft id */
    int role;        /* ADD: RAFT_VOTER, RAFT_STANDBY or RAFT_SPARE */
};

/* Starts the committer thread. ms is borrowed and must outlive the committer. cluster NULL
 * runs a single region; otherwise Raft with that configuration (copied). */
int pt_committer_start(struct pt_metastore *ms, const struct pt_raft_node_config *cluster,
                       struct pt_committer **out);
/* Any thread. Never fails once started; done_cb always runs exactly once. */
void pt_committer_submit(struct pt_committer *c, struct pt_proposal *p);
/* 1 in cluster mode. */
int pt_committer_is_cluster(const struct pt_committer *c);
/* Finishes what is queued, stops the thread and frees c. */
void pt_committer_stop(struct pt_committer *c);

#endif
