/**
 * @file Version.h
 * @brief Version of GhostMem: the `GHOSTMEM_VERSION_*` macros (defined in `ghostmem.h`, from
 * the Rust crate's version) and the `GhostMem::GetVersion*()` functions.
 */
#pragma once

#include "ghostmem.h"

#include <string>

namespace GhostMem {

/** @brief Major version of the headers. */
inline constexpr int GetVersionMajor() { return GHOSTMEM_VERSION_MAJOR; }

/** @brief Minor version of the headers. */
inline constexpr int GetVersionMinor() { return GHOSTMEM_VERSION_MINOR; }

/** @brief Patch version of the headers. */
inline constexpr int GetVersionPatch() { return GHOSTMEM_VERSION_PATCH; }

/** @brief The version as "MAJOR.MINOR.PATCH". */
inline std::string GetVersionString() { return GHOSTMEM_VERSION_STRING; }

/** @brief The version as one number: MAJOR * 10000 + MINOR * 100 + PATCH (0.9.0 is 900). */
inline constexpr int GetVersion()
{
    return GHOSTMEM_VERSION_MAJOR * 10000 + GHOSTMEM_VERSION_MINOR * 100 +
           GHOSTMEM_VERSION_PATCH;
}

/** @brief The version of the library the program runs with (may differ from the headers'
 *  when a newer libghostmem.so is installed). */
inline std::string GetLibraryVersionString() { return ghostmem_version(); }

} // namespace GhostMem
