// A shared library with no caulk descriptor.
extern "C" __attribute__((visibility("default"))) int some_function() { return 42; }
