# ASan + UBSan for the whole build (library, cxrd, tests). Any UB report aborts the test.
if(CXR_SANITIZE)
    add_compile_options(-fsanitize=address,undefined -fno-sanitize-recover=all
                        -fno-omit-frame-pointer)
    add_link_options(-fsanitize=address,undefined)
endif()
