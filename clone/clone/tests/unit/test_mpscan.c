/* mpscan: limits are enforced before any allocation, partial input asks for more. */
#include <string.h>

#include "check.h"
#include "stream/mpscan.h"

static const mpscan_limits LIM = {1 << 20, 1024, 8, 0};

static mpscan_result scan(const void *p, size_t n, size_t *len) {
    char why[128];
    return mpscan(p, n, &LIM, len, why, sizeof why);
}

int main(void) {
    size_t len;
    /* {"t":"x"} = 81 a1 74 a1 78 */
    const unsigned char ok[] = {0x81, 0xa1, 't', 0xa1, 'x'};
    CHECK(scan(ok, sizeof ok, &len) == MPSCAN_OK && len == sizeof ok);
    for (size_t n = 0; n < sizeof ok; n++) CHECK(scan(ok, n, &len) == MPSCAN_MORE && len > n);

    /* map32 claiming 4 billion entries: refused at once, from 5 bytes */
    const unsigned char map32[] = {0xdf, 0xff, 0xff, 0xff, 0xff};
    CHECK(scan(map32, sizeof map32, &len) == MPSCAN_BAD);
    /* array16 of 2000 entries: over the 1024 limit */
    const unsigned char arr16[] = {0xdc, 0x07, 0xd0};
    CHECK(scan(arr16, sizeof arr16, &len) == MPSCAN_BAD);
    /* bin32 claiming 4 GB inside a map: refused without waiting for the data */
    const unsigned char bin32[] = {0x81, 0xa1, 'd', 0xc6, 0xff, 0xff, 0xff, 0xf0};
    CHECK(scan(bin32, sizeof bin32, &len) == MPSCAN_BAD);
    /* bin32 of 100 bytes with 10 present: asks for the rest */
    const unsigned char bin_part[] = {0xc6, 0, 0, 0, 100, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
    CHECK(scan(bin_part, sizeof bin_part, &len) == MPSCAN_MORE && len == 105);
    /* nesting 100 deep */
    unsigned char deep[101];
    memset(deep, 0x91, 100);
    deep[100] = 0xc0;
    CHECK(scan(deep, sizeof deep, &len) == MPSCAN_BAD);
    /* nesting 8 deep is allowed */
    CHECK(scan(deep + 92, 9, &len) == MPSCAN_OK && len == 9);
    /* 0xc1 is never valid */
    const unsigned char c1[] = {0x91, 0xc1};
    CHECK(scan(c1, sizeof c1, &len) == MPSCAN_BAD);
    /* scalars of every width */
    const unsigned char nums[] = {0x95, 0xcc, 1, 0xcd, 1, 2, 0xce, 1, 2, 3,   4,
                                  0xcb, 0,    0, 0,    0, 0, 0,    0, 0, 0xe0};
    CHECK(scan(nums, sizeof nums, &len) == MPSCAN_OK && len == sizeof nums);
    /* a record larger than the byte limit is refused as soon as its header says so */
    mpscan_limits small = {64, 1024, 8, 0};
    char why[128];
    const unsigned char str16[] = {0xda, 0x01, 0x00};
    CHECK(mpscan(str16, sizeof str16, &small, &len, why, sizeof why) == MPSCAN_BAD);
    CHECK(strstr(why, "limit") != NULL);
    /* a record of many tiny values: bounded by the object count, not only by bytes */
    mpscan_limits few = {1 << 20, 1024, 8, 1000};
    static unsigned char many[1 + 2 + 2 * 1024];
    many[0] = 0x92;
    many[1] = 0xdc, many[2] = 0x04, many[3] = 0x00; /* array16 of 1024 nils */
    CHECK(mpscan(many, 4 + 1024, &few, &len, why, sizeof why) == MPSCAN_BAD);
    CHECK(strstr(why, "values") != NULL);
    return check_report("mpscan");
}
