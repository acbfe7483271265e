/* test.h — the one test harness: TEST/OP_TEST registration, CHECK macros, and case
 * reporting for data-driven tests (golden files). The runner (tests/main.c) runs every
 * registered test and ends with the line `N passed, N failed`. */
#ifndef DC_TEST_H
#define DC_TEST_H

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

typedef void (*dc_test_fn)(void);

/* op: the DC_OP_* this test covers, or -1. */
void dc_test_register(const char *name, const char *file, dc_test_fn fn, int op);
/* Records a failed check in the running test (prints file:line and the message). */
void dc_test_fail(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Reports one extra counted case (a golden file, a malformed text, ...) with its verdict. */
void dc_test_case(const char *name, bool ok, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define DC_TEST_DEFINE(fn, label, op)                                                     \
    static void fn(void);                                                               \
    __attribute__((constructor)) static void fn##_register(void) {                     \
        dc_test_register(label, __FILE__, fn, op);                                      \
    }                                                                                   \
    static void fn(void)

/* TEST(name) { ... } */
#define TEST(name) DC_TEST_DEFINE(test_##name, #name, -1)
/* OP_TEST(ADD, broadcast) { ... }: a forward test of DC_OP_ADD; every op needs one. */
#define OP_TEST(OP, name) DC_TEST_DEFINE(optest_##OP##_##name, #OP "." #name, DC_OP_##OP)

#define CHECK(cond)                                                                     \
    do {                                                                                \
        if (!(cond)) dc_test_fail(__FILE__, __LINE__, "CHECK(%s)", #cond);              \
    } while (0)

#define CHECK_MSG(cond, ...)                                                            \
    do {                                                                                \
        if (!(cond)) dc_test_fail(__FILE__, __LINE__, __VA_ARGS__);                     \
    } while (0)

#define CHECK_EQ_INT(a, b)                                                              \
    do {                                                                                \
        long long a_ = (long long)(a), b_ = (long long)(b);                             \
        if (a_ != b_) dc_test_fail(__FILE__, __LINE__, "%s = %lld, expected %lld", #a, a_, b_); \
    } while (0)

/* |a-b| <= atol + rtol*|b| */
#define CHECK_NEAR(a, b, atol, rtol)                                                    \
    do {                                                                                \
        double a_ = (double)(a), b_ = (double)(b);                                      \
        if (!(fabs(a_ - b_) <= (atol) + (rtol) * fabs(b_)))                             \
            dc_test_fail(__FILE__, __LINE__, "%s = %.9g, expected %.9g", #a, a_, b_);   \
    } while (0)

#define CHECK_STR_EQ(a, b)                                                              \
    do {                                                                                \
        const char *a_ = (a), *b_ = (b);                                                \
        if (!a_ || !b_ || strcmp(a_, b_) != 0)                                          \
            dc_test_fail(__FILE__, __LINE__, "%s:\n  got:      %s\n  expected: %s", #a, \
                         a_ ? a_ : "(null)", b_ ? b_ : "(null)");                       \
    } while (0)

/* Reads a whole file (NUL-terminated); NULL if it cannot. */
char *dc_test_read_file(const char *path, size_t *len);

#endif
