// cxx_operators.cc — every replaceable operator new and delete reaches gomalloc.
//
// Built twice by tests/install.sh against the installed copy: linked with
// gomalloc (pkg-config) and plain (run under LD_PRELOAD).  Either way each
// operator's address must lie in gomalloc (dladdr: libgomalloc, or this
// executable when the archive is linked in), each block must be one that
// gomalloc's gm_usable_size knows (it aborts on any other), alignments must
// hold, the new-handler loop and std::bad_alloc must follow the standard,
// and the nothrow forms must return NULL.  The script also checks the
// dynamic linker's bindings (LD_DEBUG=bindings) and runs this with
// GOMALLOC_DEBUG=1, where every sized delete the compiler emits is checked
// against the block.
//
//   cxx_operators               all the checks; "N passed, M failed"
//   cxx_operators wrong-size    a sized delete with the wrong size (must abort
//                               in debug mode)
#include <dlfcn.h>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>
#include <vector>

namespace {

int passed, failed;

void check(bool ok, const char *what) {
    std::printf("%s %s\n", ok ? "ok" : "FAIL", what);
    (ok ? passed : failed)++;
}

// gomalloc's entry points, looked up at run time so one source serves the
// linked and the preloaded build.
size_t (*usable_size)(const void *);
size_t (*good_size)(size_t);

bool aligned(const void *p, size_t a) { return (reinterpret_cast<uintptr_t>(p) & (a - 1)) == 0; }

// Where the code at addr comes from: gomalloc's library, or this program
// when the archive is linked in.
bool in_gomalloc(const void *addr) {
    Dl_info info;
    if (!dladdr(addr, &info) || !info.dli_fname)
        return false;
    void *self = dlopen(nullptr, RTLD_NOW);
    void *own_main = dlsym(self, "main");
    Dl_info main_info;
    bool in_program = own_main && dladdr(own_main, &main_info) &&
                      main_info.dli_fbase == info.dli_fbase;
    return std::strstr(info.dli_fname, "libgomalloc") != nullptr || in_program;
}

template <typename F> const void *addr(F f) { return reinterpret_cast<const void *>(f); }

struct alignas(64) Line {
    char bytes[40];
};
struct alignas(4096) Page {
    char bytes[100];
};
// Non-trivial destructors: new[] stores a count, delete[] passes the full
// size (count included) to the sized operator.
struct Counted {
    int v = 1;
    ~Counted() { v = 0; }
};
struct alignas(128) CountedWide {
    int v = 1;
    ~CountedWide() { v = 0; }
};

int handler_calls;
void giving_up_handler() {
    if (++handler_calls == 3)
        std::set_new_handler(nullptr);
}
void throwing_handler() {
    ++handler_calls;
    throw std::bad_alloc();
}

volatile size_t impossible = static_cast<size_t>(PTRDIFF_MAX) + 1;

void operators_are_gomalloc() {
    using std::align_val_t;
    using std::nothrow_t;
    check(in_gomalloc(addr(static_cast<void *(*)(size_t)>(&::operator new))), "operator new(size_t)");
    check(in_gomalloc(addr(static_cast<void *(*)(size_t)>(&::operator new[]))), "operator new[](size_t)");
    check(in_gomalloc(addr(static_cast<void *(*)(size_t, const nothrow_t &) noexcept>(&::operator new))),
          "operator new(size_t, nothrow_t)");
    check(in_gomalloc(addr(static_cast<void *(*)(size_t, const nothrow_t &) noexcept>(&::operator new[]))),
          "operator new[](size_t, nothrow_t)");
    check(in_gomalloc(addr(static_cast<void *(*)(size_t, align_val_t)>(&::operator new))),
          "operator new(size_t, align_val_t)");
    check(in_gomalloc(addr(static_cast<void *(*)(size_t, align_val_t)>(&::operator new[]))),
          "operator new[](size_t, align_val_t)");
    check(in_gomalloc(addr(static_cast<void *(*)(size_t, align_val_t, const nothrow_t &) noexcept>(
              &::operator new))),
          "operator new(size_t, align_val_t, nothrow_t)");
    check(in_gomalloc(addr(static_cast<void *(*)(size_t, align_val_t, const nothrow_t &) noexcept>(
              &::operator new[]))),
          "operator new[](size_t, align_val_t, nothrow_t)");
    check(in_gomalloc(addr(static_cast<void (*)(void *) noexcept>(&::operator delete))), "operator delete(void *)");
    check(in_gomalloc(addr(static_cast<void (*)(void *) noexcept>(&::operator delete[]))),
          "operator delete[](void *)");
    check(in_gomalloc(addr(static_cast<void (*)(void *, const nothrow_t &) noexcept>(&::operator delete))),
          "operator delete(void *, nothrow_t)");
    check(in_gomalloc(addr(static_cast<void (*)(void *, const nothrow_t &) noexcept>(&::operator delete[]))),
          "operator delete[](void *, nothrow_t)");
    check(in_gomalloc(addr(static_cast<void (*)(void *, size_t) noexcept>(&::operator delete))),
          "operator delete(void *, size_t)");
    check(in_gomalloc(addr(static_cast<void (*)(void *, size_t) noexcept>(&::operator delete[]))),
          "operator delete[](void *, size_t)");
    check(in_gomalloc(addr(static_cast<void (*)(void *, align_val_t) noexcept>(&::operator delete))),
          "operator delete(void *, align_val_t)");
    check(in_gomalloc(addr(static_cast<void (*)(void *, align_val_t) noexcept>(&::operator delete[]))),
          "operator delete[](void *, align_val_t)");
    check(in_gomalloc(addr(static_cast<void (*)(void *, align_val_t, const nothrow_t &) noexcept>(
              &::operator delete))),
          "operator delete(void *, align_val_t, nothrow_t)");
    check(in_gomalloc(addr(static_cast<void (*)(void *, align_val_t, const nothrow_t &) noexcept>(
              &::operator delete[]))),
          "operator delete[](void *, align_val_t, nothrow_t)");
    check(in_gomalloc(addr(static_cast<void (*)(void *, size_t, align_val_t) noexcept>(&::operator delete))),
          "operator delete(void *, size_t, align_val_t)");
    check(in_gomalloc(addr(static_cast<void (*)(void *, size_t, align_val_t) noexcept>(&::operator delete[]))),
          "operator delete[](void *, size_t, align_val_t)");
}

// Each form called by name, with a block gomalloc must know.
void explicit_calls() {
    using std::align_val_t;
    const align_val_t a256{256};
    bool ok = true;
    void *p = ::operator new(100);
    ok &= usable_size(p) == good_size(100);
    ::operator delete(p);
    p = ::operator new[](100);
    ok &= usable_size(p) == good_size(100);
    ::operator delete[](p);
    p = ::operator new(100, std::nothrow);
    ok &= p && usable_size(p) >= 100;
    ::operator delete(p, std::nothrow);
    p = ::operator new[](100, std::nothrow);
    ok &= p && usable_size(p) >= 100;
    ::operator delete[](p, std::nothrow);
    p = ::operator new(100);
    ::operator delete(p, 100);
    p = ::operator new[](3000);
    ::operator delete[](p, 3000);
    check(ok, "plain, array, nothrow and sized forms hand out and take back gomalloc blocks");

    ok = true;
    p = ::operator new(100, a256);
    ok &= aligned(p, 256) && usable_size(p) >= 100;
    ::operator delete(p, a256);
    p = ::operator new[](100, a256);
    ok &= aligned(p, 256) && usable_size(p) >= 100;
    ::operator delete[](p, a256);
    p = ::operator new(100, a256, std::nothrow);
    ok &= p && aligned(p, 256);
    ::operator delete(p, a256, std::nothrow);
    p = ::operator new[](100, a256, std::nothrow);
    ok &= p && aligned(p, 256);
    ::operator delete[](p, a256, std::nothrow);
    p = ::operator new(100, a256);
    ::operator delete(p, 100, a256);
    p = ::operator new[](100, align_val_t{1 << 20});
    ok &= aligned(p, 1 << 20);
    ::operator delete[](p, 100, align_val_t{1 << 20});
    check(ok, "aligned, aligned nothrow and sized aligned forms");

    p = ::operator new(0);
    void *q = ::operator new(0);
    check(p && q && p != q, "operator new(0) returns distinct blocks");
    ::operator delete(p, size_t{0});
    ::operator delete(q);
    ::operator delete(nullptr);
    ::operator delete(nullptr, size_t{16});
    ::operator delete[](nullptr, align_val_t{64});
}

// What the compiler emits for new-expressions, over-aligned types included.
void expressions() {
    bool ok = true;
    int *i = new int(7);
    ok &= *i == 7 && usable_size(i) == good_size(sizeof(int));
    delete i;
    Counted *c = new Counted[10];   // c is past the count: not a block's start
    ok &= c[9].v == 1;
    delete[] c;
    std::string *s = new std::string(200, 'x');
    ok &= usable_size(s->data()) >= 200;
    delete s;
    check(ok, "new/delete expressions, including an array with a count cookie");

    ok = true;
    Line *l = new Line;
    ok &= aligned(l, 64);
    delete l;
    Line *ls = new Line[7];
    ok &= aligned(ls, 64);
    delete[] ls;
    Page *pg = new Page;
    ok &= aligned(pg, 4096);
    delete pg;
    Page *pgs = new Page[3];
    ok &= aligned(pgs, 4096);
    delete[] pgs;
    CountedWide *cw = new CountedWide[5];
    ok &= aligned(cw, 128);
    delete[] cw;
    Line *ln = new (std::nothrow) Line;
    ok &= ln && aligned(ln, 64);
    delete ln;
    check(ok, "over-aligned types (alignas 64, 128, 4096) with new, new[] and nothrow new");

    std::vector<std::string> v;
    for (int k = 0; k < 1000; k++)
        v.push_back(std::string(static_cast<size_t>(k % 97) + 20, 'a'));
    size_t total = 0;
    for (const std::string &str : v)
        total += str.size();
    check(total > 0 && usable_size(v.data()) >= v.capacity() * sizeof(std::string),
          "standard containers allocate through gomalloc");
}

void failures() {
    bool threw = false;
    try {
        void *p = ::operator new(impossible);
        ::operator delete(p);
    } catch (const std::bad_alloc &) {
        threw = true;
    }
    check(threw, "operator new of an impossible size throws std::bad_alloc");

    threw = false;
    try {
        char *p = new char[impossible];
        delete[] p;
    } catch (const std::bad_alloc &) {
        threw = true;
    }
    check(threw, "new char[impossible] throws std::bad_alloc");

    threw = false;
    try {
        void *p = ::operator new(impossible, std::align_val_t{64});
        ::operator delete(p, std::align_val_t{64});
    } catch (const std::bad_alloc &) {
        threw = true;
    }
    check(threw, "aligned operator new of an impossible size throws std::bad_alloc");

    threw = false;
    try {
        void *p = ::operator new(64, std::align_val_t{48});
        ::operator delete(p);
    } catch (const std::bad_alloc &) {
        threw = true;
    }
    check(threw, "an alignment that is not a power of two throws std::bad_alloc");

    check(::operator new(impossible, std::nothrow) == nullptr &&
              ::operator new[](impossible, std::nothrow) == nullptr &&
              ::operator new(impossible, std::align_val_t{64}, std::nothrow) == nullptr &&
              ::operator new[](impossible, std::align_val_t{64}, std::nothrow) == nullptr,
          "the nothrow forms return NULL for an impossible size");

    handler_calls = 0;
    std::set_new_handler(giving_up_handler);
    threw = false;
    try {
        void *p = ::operator new(impossible);
        ::operator delete(p);
    } catch (const std::bad_alloc &) {
        threw = true;
    }
    check(threw && handler_calls == 3,
          "the new-handler is called until it uninstalls itself, then std::bad_alloc");

    handler_calls = 0;
    std::set_new_handler(giving_up_handler);
    void *p = ::operator new(impossible, std::nothrow);
    check(p == nullptr && handler_calls == 3, "nothrow new calls the new-handler too, then returns NULL");

    handler_calls = 0;
    std::set_new_handler(throwing_handler);
    p = ::operator new(impossible, std::nothrow);
    void *q = ::operator new[](impossible, std::align_val_t{32}, std::nothrow);
    check(p == nullptr && q == nullptr && handler_calls == 2,
          "nothrow new returns NULL when the new-handler throws");

    threw = false;
    try {
        p = ::operator new(impossible);
    } catch (const std::bad_alloc &) {
        threw = true;
    }
    check(threw && handler_calls == 3, "a throwing new-handler's exception leaves operator new");
    std::set_new_handler(nullptr);
}

} // namespace

int main(int argc, char **argv) {
    usable_size = reinterpret_cast<size_t (*)(const void *)>(dlsym(RTLD_DEFAULT, "gm_usable_size"));
    good_size = reinterpret_cast<size_t (*)(size_t)>(dlsym(RTLD_DEFAULT, "gm_good_size"));
    if (!usable_size || !good_size) {
        std::printf("FAIL gomalloc is not in this process\n0 passed, 1 failed\n");
        return 1;
    }
    if (argc > 1 && std::strcmp(argv[1], "wrong-size") == 0) {
        void *p = ::operator new(20);
        std::printf("deleting %p with the wrong size\n", p);
        std::fflush(stdout);
        ::operator delete(p, 24);
        return 0;
    }
    operators_are_gomalloc();
    explicit_calls();
    expressions();
    failures();
    std::printf("%d passed, %d failed\n", passed, failed);
    return failed != 0;
}
