# Fuzz targets. Each target is a file defining LLVMFuzzerTestOneInput. With CXR_FUZZ=ON it is
# linked against libFuzzer; otherwise it is linked with a replay main and registered in ctest,
# replaying its seed corpus (tests/fuzz/<name>/) so every build exercises it, sanitizers included.
if(CXR_FUZZ)
    if(NOT CMAKE_C_COMPILER_ID STREQUAL "Clang")
        message(FATAL_ERROR "CXR_FUZZ needs clang: cmake -DCMAKE_C_COMPILER=clang -DCXR_FUZZ=ON")
    endif()
    add_compile_options(-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all
                        -fno-omit-frame-pointer)
    add_link_options(-fsanitize=address,undefined)
endif()

function(cxr_add_fuzz_target name source)
    set(corpus "${CMAKE_SOURCE_DIR}/tests/fuzz/${name}")
    if(CXR_FUZZ)
        add_executable(fuzz_${name} ${source})
        target_link_libraries(fuzz_${name} PRIVATE cxr)
        target_link_options(fuzz_${name} PRIVATE -fsanitize=fuzzer)
    else()
        add_executable(fuzz_${name} ${source} "${CMAKE_SOURCE_DIR}/tests/fuzz/fuzz_replay_main.c")
        target_link_libraries(fuzz_${name} PRIVATE cxr)
        if(CXR_TESTS)
            add_test(NAME fuzz_replay_${name} COMMAND fuzz_${name} "${corpus}")
        endif()
    endif()
endfunction()
