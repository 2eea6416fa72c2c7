/*
 * api_referrers.c - end-12a/12b: GET /v2/<name>/referrers/<digest>[?artifactType=...]
 * (OCI distribution-spec v1.1 "Listing Referrers").
 *
 * The answer is always an OCI image index (never 404 for a valid name and digest): one
 * descriptor per manifest whose subject is <digest>, with its artifactType and annotations.
 * A subject without referrers, a subject that does not exist and a repository that does not
 * exist all get 200 with an empty index: the spec's "Assuming a repository is found, this
 * request MUST return a 200 OK" is followed by "the registry MUST NOT return a 404 Not Found
 * to a referrers API request", and a client that gets 404 concludes the registry lacks the
 * API and falls back to the referrers tag schema ("Unavailable Referrers API").
 * With ?artifactType= only matching descriptors are listed and the response carries
 * OCI-Filters-Applied: artifactType.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "digest.h"
#include "err.h"
#include "http.h"
#include "metastore.h"
#include "worker.h"
#include "query.h"

#define REFERRERS_MAX    10000
#define INDEX_MEDIA_TYPE "application/vnd.oci.image.index.v1+json"

void pt_api_referrers(struct pt_worker *w, h2o_req_t *req, const struct pt_route *rt)
{
    if (!pt_http_method_is(req, "GET") && !pt_http_is_head(req)) {
        pt_http_error(req, PT_E_METHOD, NULL, NULL);
        return;
    }
    char *name = pt_api_name(req, rt);
    char subject[PT_DIGEST_STR_MAX + 1];
    pt_digest_format(&rt->digest, subject);
    h2o_iovec_t q = pt_http_query(req);
    char filter[256];
    int flen = pt_query_get(q.base, q.len, "artifactType", 0, filter, sizeof(filter));
    if (flen < 0 && flen != PT_E_NOT_FOUND) {
        pt_http_error(req, PT_E_UNSUPPORTED, "invalid artifactType filter", NULL);
        return;
    }
    int filtered = flen >= 0;

    struct pt_referrer *refs = NULL;
    size_t count = 0;
    int rv = pt_metastore_list_referrers(w->node->ms, name, subject, filtered ? filter : NULL,
                                         REFERRERS_MAX, &refs, &count);
    if (rv == PT_E_NAME_UNKNOWN)
        rv = 0; /* no repository: no referrers (see the file comment) */
    if (rv != 0) {
        pt_http_error(req, rv, NULL, NULL);
        return;
    }
    json_t *manifests = json_array();
    for (size_t i = 0; i < count; i++) {
        json_t *d = json_pack("{s:s,s:s,s:I}", "mediaType", refs[i].media_type, "digest",
                              refs[i].digest, "size", (json_int_t)refs[i].size);
        if (d == NULL)
            continue;
        if (refs[i].artifact_type[0] != '\0')
            json_object_set_new(d, "artifactType", json_string(refs[i].artifact_type));
        if (refs[i].annotations != NULL) {
            json_t *ann = json_loads(refs[i].annotations, 0, NULL);
            if (json_is_object(ann) && json_object_size(ann) > 0)
                json_object_set(d, "annotations", ann);
            json_decref(ann);
        }
        json_array_append_new(manifests, d);
    }
    pt_referrers_free(refs, count);
    json_t *index = json_pack("{s:i,s:s,s:o}", "schemaVersion", 2, "mediaType", INDEX_MEDIA_TYPE,
                              "manifests", manifests);
    char *text = index != NULL ? json_dumps(index, JSON_COMPACT) : NULL;
    json_decref(index);
    if (text == NULL) {
        pt_http_error(req, PT_E_NOMEM, NULL, NULL);
        return;
    }
    if (filtered)
        pt_http_header(req, "OCI-Filters-Applied", "artifactType", 12);
    pt_http_send(req, 200, INDEX_MEDIA_TYPE, text, strlen(text));
    free(text);
}
