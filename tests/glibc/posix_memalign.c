/*
 * posix_memalign.c — posix_memalign (glibc's tst-posix_memalign): it returns
 * an error number and never sets errno as its result; a size near SIZE_MAX
 * and -pagesize at page alignment give ENOMEM and leave the out-pointer
 * alone; an alignment that is not a power of two times sizeof(void *) (-1,
 * 0x300, 0, and 4 on a 64-bit machine) gives EINVAL; size 0 succeeds with a
 * block; 0x100 alignment is honoured.
 */
#include "check.h"

static volatile size_t minus_one = (size_t)-1;

static void expect_error(size_t align, size_t size, int expected, const char *name)
{
    void *sentinel = &sentinel;
    void *p = sentinel;
    int rc = posix_memalign(&p, align, size);
    gt_check(rc == expected, "posix_memalign(&p, %#zx, %#zx) returned %d, expected %s", align,
             size, rc, name);
    gt_check(p == sentinel, "posix_memalign(&p, %#zx, %#zx) failed but changed p", align, size);
}

int main(void)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    expect_error(sizeof(void *), minus_one, ENOMEM, "ENOMEM");
    expect_error(page, -page, ENOMEM, "ENOMEM");
    expect_error(minus_one, page, EINVAL, "EINVAL");
    expect_error(0x300, 10, EINVAL, "EINVAL");
    expect_error(0, 10, EINVAL, "EINVAL");
    if (sizeof(void *) > 4)
        expect_error(4, 10, EINVAL, "EINVAL");

    void *p = NULL;
    int rc = posix_memalign(&p, sizeof(void *), 0);
    gt_check(rc == 0 && p != NULL, "posix_memalign(&p, %zu, 0) = %d, p = %p; expected a block",
             sizeof(void *), rc, p);
    free(p);

    p = NULL;
    errno = 0;
    rc = posix_memalign(&p, 0x100, 10);
    gt_check(rc == 0 && p != NULL, "posix_memalign(&p, 0x100, 10) = %d", rc);
    gt_check((uintptr_t)p % 0x100 == 0, "posix_memalign(&p, 0x100, 10) gave %p", p);
    gt_check(errno == 0, "a successful posix_memalign changed errno to %d", errno);
    free(p);
    return 0;
}
