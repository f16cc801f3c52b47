/* ab_kernels.c -- A/B timing of the recurrent kernels of two builds of csrc/
 * (shared libraries made by ab_kernels.sh, dlopen'd side by side), rounds
 * interleaved, timed by the thread's CPU time (CLOCK_THREAD_CPUTIME_ID) so
 * that time spent descheduled on a loaded machine does not count.
 *
 *   ab_kernels libA.so libB.so ROUNDS KIND T B I H [MODE [SIMD]]
 *
 * KIND: r (tanh RNN), l (LSTM), g (GRU), t / s (tanh / sigmoid over T
 * elements); MODE 1 forward, 2 backward, 3 both (default); SIMD: force a
 * level in both builds. Needs OBLAS=path of scipy's OpenBLAS (the BLAS the
 * package uses). Prints the median and minimum per call of each build and
 * the B/A ratio of the medians. float32, zero initial state, loss on h_T.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <time.h>
#include "blas.h"
#include <math.h>
typedef int (*setb_t)(const gc_blas_table *);
typedef void (*init_t)(void);
typedef int (*simdset_t)(int);
typedef int (*lstm_f)(float*,float*,float*,const float*,const float*,const float*,const float*,const float*,const float*,const float*,int64_t,int64_t,int64_t,int64_t,int,int64_t*);
typedef int (*lstm_b)(float*,float*,float*,float*,float*,float*,float*,double*,double*,const float*,const float*,const float*,const float*,const float*,const float*,const float*,const float*,float*,const float*,const float*,int64_t,int64_t,int64_t,int64_t,int64_t,int,int64_t*);
typedef int (*rnn_f)(float*,const float*,const float*,const float*,const float*,const float*,const float*,int64_t,int64_t,int64_t,int64_t,int,int,int64_t*);
typedef int (*rnn_b)(float*,float*,float*,float*,float*,float*,float*,double*,const float*,const float*,const float*,const float*,const float*,const float*,const float*,int64_t,int64_t,int64_t,int64_t,int,int64_t,int,int64_t*);
typedef int (*gru_f)(float*,float*,const float*,const float*,const float*,const float*,const float*,const float*,int64_t,int64_t,int64_t,int64_t,int,int64_t*);
typedef int (*gru_b)(float*,float*,float*,float*,float*,float*,double*,const float*,const float*,const float*,const float*,const float*,float*,const float*,const float*,int64_t,int64_t,int64_t,int64_t,int64_t,int,int64_t*);
typedef void (*act_t)(float*,const float*,int64_t,int);
typedef struct { act_t act; lstm_f lf; lstm_b lb; rnn_f rf; rnn_b rb; gru_f gf; gru_b gb; simdset_t ss; } lib_t;
static double now(void){struct timespec ts; clock_gettime(CLOCK_THREAD_CPUTIME_ID,&ts); return ts.tv_sec+ts.tv_nsec*1e-9;}
static float *rnd(size_t n, float s){float*p=malloc(n*4); for(size_t i=0;i<n;i++) p[i]=s*((rand()/(float)RAND_MAX)*2-1); return p;}
static int cmpd(const void*a,const void*b){double x=*(double*)a,y=*(double*)b; return x<y?-1:x>y;}
static lib_t load(const char *path, gc_blas_table *tb){
  void *h=dlopen(path,RTLD_NOW|RTLD_LOCAL); if(!h){fprintf(stderr,"%s\n",dlerror()); exit(1);}
  ((init_t)dlsym(h,"gc_simd_init"))(); ((setb_t)dlsym(h,"gc_blas_set"))(tb);
  lib_t l={dlsym(h,"gc_rec_act_f32"),dlsym(h,"gc_lstm_forward_f32"),dlsym(h,"gc_lstm_backward_f32"),dlsym(h,"gc_rnn_forward_f32"),dlsym(h,"gc_rnn_backward_f32"),dlsym(h,"gc_gru_forward_f32"),dlsym(h,"gc_gru_backward_f32"),dlsym(h,"gc_simd_set")};
  return l;
}
typedef struct { char kind; int64_t T,B,I,H; float *x,*wih,*whh,*bih,*bhh,*out,*cs,*gates,*dx,*dh0,*dc0,*dwih,*dwhh,*dbih,*dbhh,*dz,*dhT; double *n1,*n2; } wl_t;
static wl_t mk(char kind,int64_t T,int64_t B,int64_t I,int64_t H){
  int G = kind=='l'?4:kind=='g'?3:1; wl_t w={kind,T,B,I,H};
  float s=1.0f/sqrtf((float)H);
  w.x=rnd(T*B*I,1); w.wih=rnd(G*H*I,s); w.whh=rnd(G*H*H,s); w.bih=rnd(G*H,s); w.bhh=rnd(G*H,s);
  w.out=calloc(T*B*H,4); w.cs=calloc(T*B*H,4); w.gates=calloc(T*B*4*H,4); w.dx=calloc(T*B*I,4);
  w.dh0=calloc(B*H,4); w.dc0=calloc(B*H,4); w.dwih=calloc(G*H*I,4); w.dwhh=calloc(G*H*H,4); w.dbih=calloc(G*H,4); w.dbhh=calloc(G*H,4);
  w.dz=calloc(T*B*H,4); w.dhT=rnd(B*H,1); w.n1=calloc(T,8); w.n2=calloc(T,8); return w;
}
#include <math.h>
static int mode=3; // 1 fwd, 2 bwd(needs fwd), 3 both
static double run(lib_t *L, wl_t *w){
  int64_t fn; double t0=now(), t1=0; int st=0;
  if(w->kind=='t'||w->kind=='s'){ L->act(w->out,w->x,w->T,w->kind=='s'); return now()-t0; }
  if(w->kind=='l'){ st|=L->lf(w->out,w->cs,w->gates,w->x,NULL,NULL,w->wih,w->whh,w->bih,w->bhh,w->T,w->B,w->I,w->H,0,&fn); t1=now();
    st|=L->lb(w->dx,w->dh0,w->dc0,w->dwih,w->dwhh,w->dbih,w->dbhh,w->n1,w->n2,NULL,w->dhT,NULL,w->x,NULL,NULL,w->out,w->cs,w->gates,w->wih,w->whh,w->T,w->B,w->I,w->H,0,0,&fn);}
  else if(w->kind=='r'){ st|=L->rf(w->out,w->x,NULL,w->wih,w->whh,w->bih,w->bhh,w->T,w->B,w->I,w->H,2,0,&fn); t1=now();
    st|=L->rb(w->dx,w->dh0,w->dwih,w->dwhh,w->dbih,w->dbhh,w->dz,w->n1,NULL,w->dhT,w->x,NULL,w->out,w->wih,w->whh,w->T,w->B,w->I,w->H,2,0,0,&fn);}
  else { st|=L->gf(w->out,w->gates,w->x,NULL,w->wih,w->whh,w->bih,w->bhh,w->T,w->B,w->I,w->H,0,&fn); t1=now();
    st|=L->gb(w->dx,w->dh0,w->dwih,w->dwhh,w->dbih,w->dbhh,w->n1,NULL,w->dhT,w->x,NULL,w->out,w->gates,w->wih,w->whh,w->T,w->B,w->I,w->H,0,0,&fn);}
  double t2=now(); if(st){fprintf(stderr,"status %d\n",st); exit(1);}
  return mode==1? t1-t0 : mode==2? t2-t1 : t2-t0;
}
int main(int argc,char**argv){
  // usage: ab libA libB rounds kind T B I H [mode] [simd]
  void *bl=dlopen(getenv("OBLAS"),RTLD_NOW|RTLD_LOCAL); if(!bl){fprintf(stderr,"%s\n",dlerror());return 1;}
  gc_blas_table tb={dlsym(bl,"scipy_sgemm_"),dlsym(bl,"scipy_dgemm_"),dlsym(bl,"scipy_sgemv_"),dlsym(bl,"scipy_dgemv_")};
  ((void(*)(int))dlsym(bl,"scipy_openblas_set_num_threads"))(1);
  lib_t A=load(argv[1],&tb), B=load(argv[2],&tb);
  int R=atoi(argv[3]); char kind=argv[4][0];
  wl_t w=mk(kind,atoll(argv[5]),atoll(argv[6]),atoll(argv[7]),atoll(argv[8]));
  if(argc>9) mode=atoi(argv[9]);
  if(argc>10){A.ss(atoi(argv[10])); B.ss(atoi(argv[10]));}
  double work=(double)w.T*w.B*w.H*(w.H+w.I)*(kind=='l'?4:kind=='g'?3:1); if(kind=='t'||kind=='s') work=w.T*3;
  int n=(int)(2e7/work); if(n<1)n=1; if(n>2000)n=2000;
  double *ta=malloc(R*8),*tbb=malloc(R*8);
  run(&A,&w); run(&B,&w);
  for(int r=0;r<R;r++){ double s=0; for(int i=0;i<n;i++) s+=run(&A,&w); ta[r]=s/n; s=0; for(int i=0;i<n;i++) s+=run(&B,&w); tbb[r]=s/n; }
  qsort(ta,R,8,cmpd); qsort(tbb,R,8,cmpd);
  printf("%c-T%ld-B%ld-I%ld-H%ld mode%d  A %.4f ms  B %.4f ms  B/A %.3f  (minA %.4f minB %.4f)\n",kind,w.T,w.B,w.I,w.H,mode,ta[R/2]*1e3,tbb[R/2]*1e3,tbb[R/2]/ta[R/2],ta[0]*1e3,tbb[0]*1e3);
  return 0;
}
