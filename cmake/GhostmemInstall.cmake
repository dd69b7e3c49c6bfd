# Install rules: the libraries, the headers, ghostmem_demo, a pkg-config file and a CMake
# package. Both generated files locate the prefix from their own position, so an installed
# tree (or the release archive) can be moved.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

install(FILES "${GHOSTMEM_STATIC_LIBRARY}" DESTINATION "${CMAKE_INSTALL_LIBDIR}")
install(FILES "${GHOSTMEM_SHARED_LIBRARY}" DESTINATION "${CMAKE_INSTALL_LIBDIR}"
        PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE
                    WORLD_READ WORLD_EXECUTE)
install(DIRECTORY "${GHOSTMEM_INCLUDE_DIR}/ghostmem" DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}")
if(TARGET ghostmem_demo)
  install(TARGETS ghostmem_demo RUNTIME DESTINATION "${CMAKE_INSTALL_BINDIR}")
endif()

# pkg-config: prefix relative to the .pc file's directory.
file(RELATIVE_PATH GHOSTMEM_PC_TO_PREFIX
     "/prefix/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/prefix")
string(REGEX REPLACE "/$" "" GHOSTMEM_PC_TO_PREFIX "${GHOSTMEM_PC_TO_PREFIX}")
set(_ghostmem_private ${GHOSTMEM_STATIC_LINK_LIBRARIES})
list(REMOVE_ITEM _ghostmem_private pthread) # already in Libs
list(TRANSFORM _ghostmem_private PREPEND "-l")
list(JOIN _ghostmem_private " " GHOSTMEM_PC_LIBS_PRIVATE)
configure_file("${PROJECT_SOURCE_DIR}/cmake/ghostmem.pc.in"
               "${PROJECT_BINARY_DIR}/ghostmem.pc" @ONLY)
install(FILES "${PROJECT_BINARY_DIR}/ghostmem.pc"
        DESTINATION "${CMAKE_INSTALL_LIBDIR}/pkgconfig")

# CMake package: find_package(ghostmem) gives ghostmem::ghostmem and ghostmem::ghostmem_shared.
set(_ghostmem_cmake_dir "${CMAKE_INSTALL_LIBDIR}/cmake/ghostmem")
configure_package_config_file(
  "${PROJECT_SOURCE_DIR}/cmake/ghostmemConfig.cmake.in"
  "${PROJECT_BINARY_DIR}/ghostmemConfig.cmake"
  INSTALL_DESTINATION "${_ghostmem_cmake_dir}"
  PATH_VARS CMAKE_INSTALL_INCLUDEDIR CMAKE_INSTALL_LIBDIR)
# 0.x: a minor version may change the API.
write_basic_package_version_file("${PROJECT_BINARY_DIR}/ghostmemConfigVersion.cmake"
  VERSION "${PROJECT_VERSION}" COMPATIBILITY SameMinorVersion)
install(FILES "${PROJECT_BINARY_DIR}/ghostmemConfig.cmake"
              "${PROJECT_BINARY_DIR}/ghostmemConfigVersion.cmake"
        DESTINATION "${_ghostmem_cmake_dir}")
