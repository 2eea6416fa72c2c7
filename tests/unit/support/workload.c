/*
 * workload.c - the replication tests' command stream, built with the command builder and
 * applied through the FSM (see workload.h).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fsm.h"
#include "text_digest.h"
#include "workload.h"

/* The repository of the k-th command: one of three. */
static void repo_of(unsigned k, char repo[32])
{
    snprintf(repo, 32, "team/app%u", k % 3);
}

void pt_workload_body(unsigned k, char body[64])
{
    snprintf(body, 64, "{\"schemaVersion\":2,\"n\":%u}", k);
}

/*
 * The k-th command of the workload: links and records a new layer, stores a manifest over it
 * and moves the tags "latest" and "v<k%4>" of repository app<k%3> to it; every fifth manifest
 * refers to an earlier one (a referrers entry). Later commands overwrite tags of earlier ones,
 * so the final state depends on the order in which commands were applied.
 */
void pt_workload_push_cmd(struct pt_command_builder *b, unsigned k)
{
    char repo[32], blob[32], layer[PT_DIGEST_STR_MAX + 1], body[64], d[PT_DIGEST_STR_MAX + 1],
        subject[PT_DIGEST_STR_MAX + 1], vtag[16];
    repo_of(k, repo);
    snprintf(blob, sizeof(blob), "layer-%u", k);
    pt_text_digest(blob, layer);
    pt_workload_body(k, body);
    pt_text_digest(body, d);
    snprintf(vtag, sizeof(vtag), "v%u", k % 4);
    bool refers = k >= 3 && k % 5 == 0;
    if (refers) {
        char prev[64];
        pt_workload_body(k - 3, prev);
        pt_text_digest(prev, subject);
    }
    assert_int_equal(pt_command_builder_init(b, PT_WORKLOAD_T0 + k, "eu-west"), 0);
    assert_int_equal(pt_command_add_link_blob(b, repo, layer, strlen(blob)), 0);
    assert_int_equal(pt_command_add_blob_stored(b, layer, strlen(blob), NULL), 0);
    const char *tags[] = {"latest", vtag};
    const char *blobs[] = {layer};
    struct pt_command_manifest m = {
        .repo = repo,
        .digest = d,
        .media_type = PT_WORKLOAD_MT_OCI,
        .body = body,
        .len = strlen(body),
        .tags = tags,
        .n_tags = 2,
        .subject = refers ? subject : NULL,
        .artifact_type = refers ? "application/vnd.example.sig" : NULL,
        .annotations = refers ? "{\"k\":\"v\"}" : NULL,
        .annotations_len = refers ? 9 : 0,
        .blobs = blobs,
        .n_blobs = 1,
    };
    assert_int_equal(pt_command_add_put_manifest(b, &m), 0);
}

/* A command that points tag at a manifest no repository holds: its precondition fails. */
void pt_workload_bad_tag_cmd(struct pt_command_builder *b, const char *tag)
{
    char d[PT_DIGEST_STR_MAX + 1];
    pt_text_digest("no such manifest", d);
    assert_int_equal(pt_command_builder_init(b, PT_WORKLOAD_T0, "eu-west"), 0);
    assert_int_equal(pt_command_add_put_tag(b, "team/app0", tag, d), 0);
}

/* Applies b (freed) to ms directly at index; returns the command's status. */
int pt_workload_apply(struct pt_metastore *ms, struct pt_command_builder *b, uint64_t index)
{
    void *buf;
    size_t len;
    assert_int_equal(pt_command_builder_encode(b, &buf, &len), 0);
    pt_command_builder_free(b);
    struct pt_fsm_result res;
    assert_int_equal(pt_fsm_apply(ms, buf, len, index, &res), 0);
    free(buf);
    return res.status;
}

/* Applies workload commands first..last-1 to ms at indices first..last-1. */
void pt_workload_push(struct pt_metastore *ms, unsigned first, unsigned last)
{
    for (unsigned k = first; k < last; k++) {
        struct pt_command_builder b;
        pt_workload_push_cmd(&b, k);
        assert_int_equal(pt_workload_apply(ms, &b, k), 0);
    }
}

void pt_workload_state(struct pt_metastore *ms, char hex[65])
{
    assert_int_equal(pt_metastore_state_digest(ms, hex), 0);
}

void pt_workload_assert_unchanged(struct pt_metastore *ms, const char *hex, uint64_t index)
{
    char now[65];
    pt_workload_state(ms, now);
    assert_string_equal(now, hex);
    assert_int_equal(pt_metastore_applied_index(ms), index);
}
