/*
 * test_framing.c - request-smuggling check on raw HTTP/1 heads (framing.h).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "framing.h"

static int amb(const char *head)
{
    return pt_http_framing_ambiguous(head, strlen(head));
}

static void test_plain_heads(void **state)
{
    (void)state;
    assert_int_equal(amb("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), 0);
    assert_int_equal(amb("POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello"), 0);
    assert_int_equal(amb("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"), 0);
    assert_int_equal(amb("POST / HTTP/1.1\r\nContent-Length: 5\r\ncontent-length:5 \r\n\r\n"), 0);
    assert_int_equal(pt_http_framing_ambiguous(NULL, 0), 0);
    assert_int_equal(pt_http_framing_ambiguous("", 0), 0);
}

static void test_smuggling_heads(void **state)
{
    (void)state;
    assert_int_equal(amb("POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n"), 1);
    assert_int_equal(amb("POST / HTTP/1.1\r\ncontent-LENGTH: 5\r\nContent-Length:\t50\r\n\r\n"), 1);
    assert_int_equal(amb("POST / HTTP/1.1\r\nContent-Length: 5\r\n"
                         "Transfer-Encoding: chunked\r\n\r\n"),
                     1);
    assert_int_equal(amb("POST / HTTP/1.1\nTRANSFER-ENCODING: identity\nContent-Length: 0\n\n"), 1);
    assert_int_equal(amb("POST / HTTP/1.1\r\nContent-Length: 5, 5\r\n\r\n"), 1);
}

static void test_body_not_read(void **state)
{
    (void)state;
    /* Lines after the blank line are body, not headers. */
    assert_int_equal(amb("POST / HTTP/1.1\r\nContent-Length: 30\r\n\r\n"
                         "Transfer-Encoding: chunked\r\n"),
                     0);
    assert_int_equal(amb("POST / HTTP/1.1\nContent-Length: 30\n\nContent-Length: 2\n"), 0);
    /* A head cut short is read as far as it goes. */
    assert_int_equal(amb("POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Len"), 0);
    assert_int_equal(amb("POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2"), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_heads),
        cmocka_unit_test(test_smuggling_heads),
        cmocka_unit_test(test_body_not_read),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
