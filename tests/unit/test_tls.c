/*
 * test_tls.c - Check suite for the pure server-name rules used by SNI
 * certificate selection (src/tls_name.c): which server_names entries are
 * valid, and which client names each pattern matches (RFC 6125 6.4.3:
 * '*' is exactly one whole leftmost label).  One test per rule.
 */
#include <check.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "tls_name.h"

/* Match PATTERN against the C string NAME. */
static bool
match(const char *pattern, const char *name)
{
	return tls_name_match(pattern, name, strlen(name));
}

START_TEST(test_valid_patterns)
{
	static const char *const ok[] = {
		"example.com", "gw.example.com", "a", "localhost",
		"x-1.example-2.org", "*.example.com", "*.a.b.c.example.com",
		"EXAMPLE.COM", "123.example.com",
	};
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		ck_assert_msg(tls_name_pattern_error(ok[i]) == NULL,
			      "%s refused: %s", ok[i],
			      tls_name_pattern_error(ok[i]));
}
END_TEST

START_TEST(test_reject_empty_and_dots)
{
	ck_assert_ptr_nonnull(tls_name_pattern_error(""));
	ck_assert_ptr_nonnull(tls_name_pattern_error("."));
	ck_assert_ptr_nonnull(tls_name_pattern_error("a..b"));
	ck_assert_ptr_nonnull(tls_name_pattern_error(".example.com"));
	ck_assert_ptr_nonnull(tls_name_pattern_error("example.com."));
}
END_TEST

START_TEST(test_reject_hyphen_ends)
{
	ck_assert_ptr_nonnull(tls_name_pattern_error("-a.example.com"));
	ck_assert_ptr_nonnull(tls_name_pattern_error("a-.example.com"));
	ck_assert_ptr_null(tls_name_pattern_error("a-b.example.com"));
}
END_TEST

START_TEST(test_reject_bad_characters)
{
	ck_assert_ptr_nonnull(tls_name_pattern_error("a b.com"));
	ck_assert_ptr_nonnull(tls_name_pattern_error("a_b.com"));
	ck_assert_ptr_nonnull(tls_name_pattern_error("caf\xc3\xa9.com"));
	ck_assert_ptr_nonnull(tls_name_pattern_error("a:443"));
}
END_TEST

START_TEST(test_reject_misplaced_wildcards)
{
	ck_assert_ptr_nonnull(tls_name_pattern_error("*"));
	ck_assert_ptr_nonnull(tls_name_pattern_error("*."));
	ck_assert_ptr_nonnull(tls_name_pattern_error("*.com"));
	ck_assert_ptr_nonnull(tls_name_pattern_error("a.*.example.com"));
	ck_assert_ptr_nonnull(tls_name_pattern_error("w*.example.com"));
	ck_assert_ptr_nonnull(tls_name_pattern_error("*w.example.com"));
	ck_assert_ptr_nonnull(tls_name_pattern_error("*.*.example.com"));
	ck_assert_ptr_nonnull(tls_name_pattern_error("**.example.com"));
}
END_TEST

START_TEST(test_reject_long_labels_and_names)
{
	char label[80], name[300];

	memset(label, 'a', 64);
	memcpy(label + 64, ".com", sizeof(".com"));
	ck_assert_ptr_nonnull(tls_name_pattern_error(label));
	memset(label, 'a', 63);
	memcpy(label + 63, ".com", sizeof(".com"));
	ck_assert_ptr_null(tls_name_pattern_error(label));
	/* 4 x 63-byte labels + 3 dots = 255 > 253 */
	for (int i = 0; i < 4; i++) {
		memset(name + i * 64, 'b', 63);
		name[i * 64 + 63] = '.';
	}
	name[4 * 64 - 1] = '\0';
	ck_assert_ptr_nonnull(tls_name_pattern_error(name));
}
END_TEST

START_TEST(test_exact_match)
{
	ck_assert(match("gw.example.com", "gw.example.com"));
	ck_assert(!match("gw.example.com", "gw.example.org"));
	ck_assert(!match("gw.example.com", "gw.example.co"));
	ck_assert(!match("gw.example.com", "gw.example.comm"));
	ck_assert(!match("gw.example.com", "x.gw.example.com"));
	ck_assert(!match("gw.example.com", ""));
}
END_TEST

START_TEST(test_match_ignores_case)
{
	ck_assert(match("gw.example.com", "GW.Example.COM"));
	ck_assert(match("GW.EXAMPLE.COM", "gw.example.com"));
	ck_assert(match("*.example.com", "WWW.EXAMPLE.com"));
}
END_TEST

START_TEST(test_match_trailing_dot)
{
	ck_assert(match("gw.example.com", "gw.example.com."));
	ck_assert(match("*.example.com", "a.example.com."));
	ck_assert(!match("gw.example.com", "gw.example.com.."));
	ck_assert(!match("gw.example.com", "."));
}
END_TEST

START_TEST(test_wildcard_one_label)
{
	ck_assert(match("*.example.com", "a.example.com"));
	ck_assert(match("*.example.com", "xn--bcher-kva.example.com"));
	ck_assert(!match("*.example.com", "example.com"));
	ck_assert(!match("*.example.com", ".example.com"));
	ck_assert(!match("*.example.com", "a.b.example.com"));
	ck_assert(!match("*.example.com", "aexample.com"));
	ck_assert(!match("*.example.com", "a.example.org"));
}
END_TEST

START_TEST(test_match_length_not_nul)
{
	/* The name is LEN bytes, not NUL-terminated; an embedded NUL never
	   matches. */
	const char buf[] = "gw.example.comXYZ";
	ck_assert(tls_name_match("gw.example.com", buf, 14));
	ck_assert(!tls_name_match("gw.example.com", buf, 15));
	ck_assert(!tls_name_match("gw.example.com", "gw.example.com\0x", 16));
	ck_assert(!tls_name_match("*.example.com", "a\0.example.com", 14));
}
END_TEST

START_TEST(test_is_wildcard)
{
	ck_assert(tls_name_is_wildcard("*.example.com"));
	ck_assert(!tls_name_is_wildcard("example.com"));
	ck_assert(!tls_name_is_wildcard("*example.com"));
}
END_TEST

/* Build the suite. */
static Suite *
tls_suite(void)
{
	Suite *s = suite_create("tls_name");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_valid_patterns);
	tcase_add_test(tc, test_reject_empty_and_dots);
	tcase_add_test(tc, test_reject_hyphen_ends);
	tcase_add_test(tc, test_reject_bad_characters);
	tcase_add_test(tc, test_reject_misplaced_wildcards);
	tcase_add_test(tc, test_reject_long_labels_and_names);
	tcase_add_test(tc, test_exact_match);
	tcase_add_test(tc, test_match_ignores_case);
	tcase_add_test(tc, test_match_trailing_dot);
	tcase_add_test(tc, test_wildcard_one_label);
	tcase_add_test(tc, test_match_length_not_nul);
	tcase_add_test(tc, test_is_wildcard);
	suite_add_tcase(s, tc);
	return s;
}

/* Run the suite; non-zero exit status on any failure. */
int
main(void)
{
	SRunner *sr = srunner_create(tls_suite());
	int failed;

	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
