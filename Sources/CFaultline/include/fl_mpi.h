/*
 * Run-time loaded MPI (mpi.c): the few collectives Faultline's distributed analyses need.
 *
 * Nothing is linked: when the process was launched by Open MPI's mpirun/mpiexec (OMPI_COMM_WORLD_SIZE or
 * PMIX_RANK in the environment) and fl_mpi_init() is called, the shim dlopens libmpi.so.40 (or
 * $FAULTLINE_MPI), resolves the functions below with our own prototypes (no mpi.h needed to build) and
 * calls MPI_Init. Open MPI's handles (MPI_COMM_WORLD, MPI_DOUBLE, MPI_SUM, ...) are the addresses of
 * global objects (ompi_mpi_comm_world, ompi_mpi_double, ompi_mpi_op_sum, ...), resolved with dlsym.
 * MPICH and its derivatives use integer handles and are NOT supported: loading one fails with a message.
 *
 * Not launched by mpirun: fl_mpi_init() returns 0, libmpi is never loaded, rank 0 of 1.
 * Every collective works on MPI_COMM_WORLD. Counts are element counts (int, as MPI's); the Swift side
 * checks they fit. Each call returns MPI's error code (0 = MPI_SUCCESS), or -1 when MPI is not active.
 */
#ifndef FL_MPI_H
#define FL_MPI_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Element types and reduction operations of the collectives. */
typedef enum { FL_MPI_DOUBLE = 0, FL_MPI_INT64 = 1, FL_MPI_BYTE = 2 } fl_mpi_type;
typedef enum { FL_MPI_SUM = 0, FL_MPI_MAX = 1, FL_MPI_MIN = 2 } fl_mpi_op;

typedef struct {
    int launched;        /* 1 when the environment says mpirun started this process */
    int active;          /* 1 when MPI is loaded and initialised (rank/size below are MPI's) */
    int rank, size;      /* 0 and 1 when not active */
    char library[512];   /* the libmpi file actually opened ("" when none) */
    char version[256];   /* MPI_Get_library_version's first line ("" when none) */
    char error[1024];    /* why loading or MPI_Init failed ("" when it did not) */
} fl_mpi_status;

/* 1 when the environment shows an Open MPI launch (OMPI_COMM_WORLD_SIZE or PMIX_RANK set) and
 * FAULTLINE_MPI is not "none". */
int fl_mpi_launched(void);
/* Loads libmpi and calls MPI_Init once (thread safe), only when launched; registers MPI_Finalize with
 * atexit. Never aborts: a failure is reported in status->error with active = 0. */
const fl_mpi_status *fl_mpi_init(void);
/* The status without initialising anything. */
const fl_mpi_status *fl_mpi_status_get(void);

int fl_mpi_barrier(void);
/* In place on every rank: buffer[i] = op over ranks of buffer[i]. */
int fl_mpi_allreduce(void *buffer, int count, fl_mpi_type type, fl_mpi_op op);
/* send (count elements) from every rank into receive (size*count) on every rank, rank order. */
int fl_mpi_allgather(const void *send, int count, void *receive, fl_mpi_type type);
/* Rank r's send_count elements land at receive + displacements[r]; counts/displacements on every rank. */
int fl_mpi_allgatherv(const void *send, int send_count, void *receive, const int *counts, const int *displacements,
                      fl_mpi_type type);
/* As allgatherv, but only `root` receives (receive, counts, displacements may be NULL elsewhere). */
int fl_mpi_gatherv(const void *send, int send_count, void *receive, const int *counts, const int *displacements,
                   fl_mpi_type type, int root);
int fl_mpi_bcast(void *buffer, int count, fl_mpi_type type, int root);
/* Prints `message` to stderr (when non-empty) and ends every rank of the job with `code`. Returns only when
 * MPI is not active. */
void fl_mpi_abort(int code, const char *message);

#ifdef __cplusplus
}
#endif

#endif
