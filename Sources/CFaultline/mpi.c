/*
 * Run-time loading of Open MPI (the same approach as shim.c for OpenBLAS). See include/fl_mpi.h for the
 * contract and docs/SCALING.md for how it is used.
 */
#define _GNU_SOURCE
#include "fl_mpi.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- Open MPI's ABI, declared here so that no mpi.h is needed. Handles are pointers to objects. ---- */
typedef void *ompi_handle;
#define OMPI_IN_PLACE ((void *)1)
enum { OMPI_THREAD_SERIALIZED = 2 };

typedef int (*init_thread_fn)(int *, char ***, int, int *);
typedef int (*flag_fn)(int *);
typedef int (*void_fn)(void);
typedef int (*comm_int_fn)(ompi_handle, int *);
typedef int (*allreduce_fn)(const void *, void *, int, ompi_handle, ompi_handle, ompi_handle);
typedef int (*allgather_fn)(const void *, int, ompi_handle, void *, int, ompi_handle, ompi_handle);
typedef int (*allgatherv_fn)(const void *, int, ompi_handle, void *, const int *, const int *, ompi_handle, ompi_handle);
typedef int (*gatherv_fn)(const void *, int, ompi_handle, void *, const int *, const int *, ompi_handle, int, ompi_handle);
typedef int (*bcast_fn)(void *, int, ompi_handle, int, ompi_handle);
typedef int (*barrier_fn)(ompi_handle);
typedef int (*abort_fn)(ompi_handle, int);
typedef int (*version_fn)(char *, int *);

static struct {
    init_thread_fn init_thread; flag_fn initialized; flag_fn finalized; void_fn finalize;
    comm_int_fn comm_rank; comm_int_fn comm_size; allreduce_fn allreduce; allgather_fn allgather;
    allgatherv_fn allgatherv; gatherv_fn gatherv; bcast_fn bcast; barrier_fn barrier; abort_fn abort;
    version_fn version;
    ompi_handle world, types[3], ops[3];
} mpi;

static fl_mpi_status status = {.rank = 0, .size = 1};
static pthread_once_t init_once = PTHREAD_ONCE_INIT;

int fl_mpi_launched(void) {
    /* FAULTLINE_MPI=none: one process even in an mpirun environment (e.g. a child of an MPI program). */
    const char *choice = getenv("FAULTLINE_MPI");
    if (choice && strcmp(choice, "none") == 0) return 0;
    const char *names[] = {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK"};
    for (unsigned i = 0; i < sizeof names / sizeof *names; i++) {
        const char *v = getenv(names[i]);
        if (v && *v) return 1;
    }
    return 0;
}

static void set_error(const char *what, const char *detail) {
    snprintf(status.error, sizeof status.error, "%s%s%s", what, detail ? ": " : "", detail ? detail : "");
}

static void finalize_at_exit(void) {
    int done = 0;
    if (!status.active) return;
    mpi.finalized(&done);
    if (!done) mpi.finalize();
}

#define RESOLVE_FN(field, name)                                             \
    do {                                                                    \
        *(void **)(&mpi.field) = dlsym(lib, name);                          \
        if (!mpi.field) { missing = name; goto fail; }                      \
    } while (0)
#define RESOLVE_OBJ(dst, name)                                              \
    do {                                                                    \
        (dst) = dlsym(lib, name);                                           \
        if (!(dst)) { missing = name; goto fail; }                          \
    } while (0)

static void load_and_init(void) {
    status.launched = fl_mpi_launched();
    if (!status.launched) return;
    const char *name = getenv("FAULTLINE_MPI");
    if (!name || !*name) name = "libmpi.so.40";
    /* RTLD_GLOBAL: Open MPI's plug-ins (mca_*.so), dlopened by MPI_Init, resolve symbols of libmpi. */
    void *lib = dlopen(name, RTLD_NOW | RTLD_GLOBAL);
    if (!lib) {
        set_error(name, dlerror());
        return;
    }
    const char *missing = NULL;
    if (!dlsym(lib, "ompi_mpi_comm_world")) {
        set_error(name, "is not Open MPI (no ompi_mpi_comm_world): MPICH-style integer handles are not supported; "
                        "point FAULTLINE_MPI at Open MPI's libmpi.so.40");
        return;
    }
    RESOLVE_FN(init_thread, "MPI_Init_thread"); RESOLVE_FN(initialized, "MPI_Initialized");
    RESOLVE_FN(finalized, "MPI_Finalized"); RESOLVE_FN(finalize, "MPI_Finalize");
    RESOLVE_FN(comm_rank, "MPI_Comm_rank"); RESOLVE_FN(comm_size, "MPI_Comm_size");
    RESOLVE_FN(allreduce, "MPI_Allreduce"); RESOLVE_FN(allgather, "MPI_Allgather");
    RESOLVE_FN(allgatherv, "MPI_Allgatherv"); RESOLVE_FN(gatherv, "MPI_Gatherv");
    RESOLVE_FN(bcast, "MPI_Bcast"); RESOLVE_FN(barrier, "MPI_Barrier"); RESOLVE_FN(abort, "MPI_Abort");
    *(void **)(&mpi.version) = dlsym(lib, "MPI_Get_library_version");  /* optional (MPI-3) */
    RESOLVE_OBJ(mpi.world, "ompi_mpi_comm_world");
    RESOLVE_OBJ(mpi.types[FL_MPI_DOUBLE], "ompi_mpi_double");
    RESOLVE_OBJ(mpi.types[FL_MPI_INT64], "ompi_mpi_int64_t");
    RESOLVE_OBJ(mpi.types[FL_MPI_BYTE], "ompi_mpi_byte");
    RESOLVE_OBJ(mpi.ops[FL_MPI_SUM], "ompi_mpi_op_sum");
    RESOLVE_OBJ(mpi.ops[FL_MPI_MAX], "ompi_mpi_op_max");
    RESOLVE_OBJ(mpi.ops[FL_MPI_MIN], "ompi_mpi_op_min");

    Dl_info info;
    if (dladdr((void *)mpi.init_thread, &info) && info.dli_fname) snprintf(status.library, sizeof status.library, "%s", info.dli_fname);
    else snprintf(status.library, sizeof status.library, "%s", name);

    int already = 0, provided = 0;
    mpi.initialized(&already);
    if (!already) {
        int rc = mpi.init_thread(NULL, NULL, OMPI_THREAD_SERIALIZED, &provided);
        if (rc != 0) {
            char code[32];
            snprintf(code, sizeof code, "error code %d", rc);
            set_error("MPI_Init_thread failed", code);
            return;
        }
        atexit(finalize_at_exit);
    }
    mpi.comm_rank(mpi.world, &status.rank);
    mpi.comm_size(mpi.world, &status.size);
    if (mpi.version) {
        static char text[8192];
        int length = 0;
        if (mpi.version(text, &length) == 0) {
            text[length > 0 && length < (int)sizeof text ? length : (int)sizeof text - 1] = 0;
            size_t line = strcspn(text, "\n");
            snprintf(status.version, sizeof status.version, "%.*s", (int)line, text);
        }
    }
    status.active = 1;
    return;
fail:
    set_error("missing symbol in the MPI library", missing);
}

const fl_mpi_status *fl_mpi_init(void) {
    pthread_once(&init_once, load_and_init);
    return &status;
}

const fl_mpi_status *fl_mpi_status_get(void) {
    if (!status.launched) status.launched = fl_mpi_launched();
    return &status;
}

int fl_mpi_barrier(void) { return status.active ? mpi.barrier(mpi.world) : -1; }

int fl_mpi_allreduce(void *buffer, int count, fl_mpi_type type, fl_mpi_op op) {
    if (!status.active) return -1;
    return mpi.allreduce(OMPI_IN_PLACE, buffer, count, mpi.types[type], mpi.ops[op], mpi.world);
}

int fl_mpi_allgather(const void *send, int count, void *receive, fl_mpi_type type) {
    if (!status.active) return -1;
    return mpi.allgather(send, count, mpi.types[type], receive, count, mpi.types[type], mpi.world);
}

int fl_mpi_allgatherv(const void *send, int send_count, void *receive, const int *counts, const int *displacements,
                      fl_mpi_type type) {
    if (!status.active) return -1;
    return mpi.allgatherv(send, send_count, mpi.types[type], receive, counts, displacements, mpi.types[type], mpi.world);
}

int fl_mpi_gatherv(const void *send, int send_count, void *receive, const int *counts, const int *displacements,
                   fl_mpi_type type, int root) {
    if (!status.active) return -1;
    return mpi.gatherv(send, send_count, mpi.types[type], receive, counts, displacements, mpi.types[type], root, mpi.world);
}

int fl_mpi_bcast(void *buffer, int count, fl_mpi_type type, int root) {
    if (!status.active) return -1;
    return mpi.bcast(buffer, count, mpi.types[type], root, mpi.world);
}

void fl_mpi_abort(int code, const char *message) {
    if (message && *message) {
        fputs(message, stderr);
        if (message[strlen(message) - 1] != '\n') fputc('\n', stderr);
        fflush(stderr);
    }
    if (status.active) mpi.abort(mpi.world, code);
}
