/* Base64 against the RFC 4648 test vectors, round trips, and malformed input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "util/util.h"

static void rfc4648_vectors(void **state)
{
    (void)state;
    static const char *const plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    static const char *const encoded[] = {"",         "Zg==",     "Zm8=",    "Zm9v",
                                          "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    for (size_t i = 0; i < 7; i++) {
        char out[16];
        size_t size = strlen(plain[i]);
        assert_int_equal(cxr_base64_encoded_length(size), strlen(encoded[i]));
        cxr_base64_encode((const uint8_t *)plain[i], size, out);
        assert_string_equal(out, encoded[i]);
        struct cxr_buf buf = CXR_BUF_INIT(0);
        assert_int_equal(cxr_base64_decode(encoded[i], strlen(encoded[i]), &buf), CXR_OK);
        assert_int_equal(buf.len, size);
        if (size)
            assert_memory_equal(buf.data, plain[i], size);
        cxr_buf_release(&buf);
    }
}

static void round_trip_all_bytes(void **state)
{
    (void)state;
    uint8_t bytes[1000];
    for (size_t i = 0; i < sizeof bytes; i++)
        bytes[i] = (uint8_t)(i * 131 + 7);
    for (size_t size = 0; size < sizeof bytes; size += 37) {
        char *text = malloc(cxr_base64_encoded_length(size) + 1);
        cxr_base64_encode(bytes, size, text);
        struct cxr_buf buf = CXR_BUF_INIT(0);
        assert_int_equal(cxr_base64_decode(text, strlen(text), &buf), CXR_OK);
        assert_int_equal(buf.len, size);
        if (size)
            assert_memory_equal(buf.data, bytes, size);
        cxr_buf_release(&buf);
        free(text);
    }
}

static void malformed_refused(void **state)
{
    (void)state;
    static const char *const bad[] = {"Zg=", "Zg", "Z===", "Zh==", "Zm9v!A==", "====", "Zm=v"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct cxr_buf buf = CXR_BUF_INIT(0);
        if (cxr_base64_decode(bad[i], strlen(bad[i]), &buf) != CXR_ERR_MALFORMED)
            fail_msg("'%s' was accepted", bad[i]);
        assert_int_equal(buf.len, 0);
        cxr_buf_release(&buf);
    }
}

static void url_safe_alphabet(void **state)
{
    (void)state;
    /* {"alg":"HS256","typ":"JWT"} as in RFC 7519 examples, unpadded, URL-safe. */
    const char *segment = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9";
    struct cxr_buf buf = CXR_BUF_INIT(0);
    assert_int_equal(cxr_base64url_decode(segment, strlen(segment), &buf), CXR_OK);
    assert_int_equal(buf.len, 27);
    assert_memory_equal(buf.data, "{\"alg\":\"HS256\",\"typ\":\"JWT\"}", 27);
    cxr_buf_release(&buf);
    uint8_t high[] = {0xfb, 0xff};
    assert_int_equal(cxr_base64url_decode("-_8", 3, &buf), CXR_OK);
    assert_memory_equal(buf.data, high, 2);
    cxr_buf_release(&buf);
    assert_int_equal(cxr_base64url_decode("+/8", 3, &buf), CXR_ERR_MALFORMED);
    assert_int_equal(cxr_base64url_decode("A", 1, &buf), CXR_ERR_MALFORMED);
    cxr_buf_release(&buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(rfc4648_vectors),
            cmocka_unit_test(round_trip_all_bytes),
            cmocka_unit_test(malformed_refused),
            cmocka_unit_test(url_safe_alphabet),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
