# tests/install.mk — make test-install; included by the top-level Makefile.
#
#   make test-install   tests/install.sh: make install into a temporary DESTDIR,
#                       then adopt that copy the ways a project would (pkg-config,
#                       CMake, C++ operators, sized free, settings, gomalloc-run,
#                       dlopen, manual pages) and make uninstall
#
# Uses from the Makefile: CC, CXX, LIB_SO, LIB_A.  Needs pkgconf, cmake, g++,
# groff-base and man-db (APT_PKGS).

.PHONY: test-install

test-install: $(LIB_SO) $(LIB_A)
	MAKE="$(MAKE)" CC="$(CC)" CXX="$(CXX)" tests/install.sh
