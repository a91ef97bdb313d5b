/*
 * test_lock.c — gm_lock_t: mutual exclusion under contention (threads that
 * sleep on the futex included), trylock, and the exact holder answer fork
 * relies on.
 */
#include <pthread.h>

#include "internal.h"
#include "testutil.h"

static gm_lock_t lock = GM_LOCK_INIT;
static volatile long counter;   /* guarded by lock, deliberately not atomic */

static void *hammer(void *arg) {
    long rounds = (long)(intptr_t)arg;
    for (long i = 0; i < rounds; i++) {
        gm_lock(&lock);
        long v = counter;
        if (i % 1024 == 0)
            sched_yield();   /* holders get preempted: waiters must sleep */
        counter = v + 1;
        gm_unlock(&lock);
    }
    return NULL;
}

static void test_lock_excludes_under_contention(void **state) {
    (void)state;
    enum { THREADS = 4 };
    long rounds = gm_test_scaled(200000, 2000);
    pthread_t t[THREADS];
    counter = 0;
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, hammer, (void *)(intptr_t)rounds), 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(counter, THREADS * rounds);
    assert_int_equal(gm_lock_holder(&lock), 0);
}

static void *try_from_other(void *arg) {
    gm_lock_t *l = arg;
    bool held = gm_lock_held(l), got = gm_trylock(l);
    return (void *)(intptr_t)(held * 2 + got);
}

static void test_lock_knows_its_holder(void **state) {
    (void)state;
    gm_lock_t l = GM_LOCK_INIT;
    assert_false(gm_lock_held(&l));
    gm_lock(&l);
    assert_true(gm_lock_held(&l));
    assert_int_equal(gm_lock_holder(&l), gm_lock_self());
    pthread_t t;
    void *result;
    pthread_create(&t, NULL, try_from_other, &l);
    pthread_join(t, &result);
    assert_int_equal((intptr_t)result, 0);   /* not its holder, and refused */
    assert_false(gm_trylock(&l));            /* not recursive */
    gm_unlock(&l);
    assert_false(gm_lock_held(&l));
    assert_true(gm_trylock(&l));
    gm_unlock(&l);
}

static void test_lock_ids_differ_between_threads(void **state) {
    (void)state;
    gm_lock_t l = GM_LOCK_INIT;
    gm_lock(&l);
    pthread_t t;
    void *result;
    pthread_create(&t, NULL, try_from_other, &l);
    pthread_join(t, &result);
    gm_unlock(&l);
    /* A fresh thread takes a free lock and does not see it as held first. */
    pthread_create(&t, NULL, try_from_other, &l);
    pthread_join(t, &result);
    assert_int_equal((intptr_t)result, 1);
    assert_true(gm_lock_holder(&l) != 0 && !gm_lock_held(&l));
    gm_lock_reset(&l);
    assert_int_equal(gm_lock_holder(&l), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lock_excludes_under_contention),
        cmocka_unit_test(test_lock_knows_its_holder),
        cmocka_unit_test(test_lock_ids_differ_between_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
