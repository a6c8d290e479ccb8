/* PVH entry of the CXL test payload: 32-bit protected mode, paging off, %ebx =
 * hvm_start_info. Identity-maps the first 4 GiB with 2 MiB pages, enters long mode and
 * calls main(start_info). Further 1 GiB ranges are mapped on demand by map_gib(). */

	.section .note.pvh, "a"
	.p2align 2
	.long 4              /* namesz */
	.long 4              /* descsz */
	.long 18             /* XEN_ELFNOTE_PHYS32_ENTRY */
	.asciz "Xen"
	.long _start32

	.section .text.entry, "ax"
	.code32
	.globl _start32
_start32:
	cli
	movl %ebx, start_info
	movl $stack_top, %esp

	/* pml4[0] -> pdpt0, pdpt0[i] -> pd_low + i*4096 (i = 0..3) */
	movl $pdpt0, %eax
	orl $0x3, %eax
	movl %eax, pml4
	xorl %ecx, %ecx
1:	movl %ecx, %eax
	shll $12, %eax
	addl $pd_low, %eax
	orl $0x3, %eax
	movl %eax, pdpt0(,%ecx,8)
	incl %ecx
	cmpl $4, %ecx
	jb 1b

	/* pd_low[j] = j * 2 MiB | PS | RW | P, j = 0..2047 */
	xorl %ecx, %ecx
2:	movl %ecx, %eax
	shll $21, %eax
	orl $0x83, %eax
	movl %eax, pd_low(,%ecx,8)
	movl %ecx, %eax
	shrl $11, %eax
	movl %eax, pd_low+4(,%ecx,8)
	incl %ecx
	cmpl $2048, %ecx
	jb 2b

	movl %cr4, %eax
	orl $0x20, %eax          /* PAE */
	movl %eax, %cr4
	movl $pml4, %eax
	movl %eax, %cr3
	movl $0xc0000080, %ecx   /* EFER */
	rdmsr
	orl $0x100, %eax         /* LME */
	wrmsr
	movl %cr0, %eax
	orl $0x80000001, %eax    /* PG | PE */
	movl %eax, %cr0
	lgdt gdt_desc
	ljmp $0x08, $start64

	.code64
start64:
	movw $0x10, %ax
	movw %ax, %ds
	movw %ax, %es
	movw %ax, %ss
	movw %ax, %fs
	movw %ax, %gs
	movabsq $stack_top, %rsp
	movl start_info, %edi
	call main
3:	hlt
	jmp 3b

	.section .rodata
	.p2align 3
gdt:
	.quad 0
	.quad 0x00af9a000000ffff  /* 0x08: 64-bit code */
	.quad 0x00cf92000000ffff  /* 0x10: data */
gdt_desc:
	.word gdt_desc - gdt - 1
	.long gdt

	.section .bss
	.p2align 12
	.globl pml4
pml4:	.skip 4096
	.globl pdpt0
pdpt0:	.skip 4096
pd_low:	.skip 4096 * 4
	.globl pt_pool
pt_pool: .skip 4096 * 16
	.p2align 4
	.skip 16384
stack_top:
	.globl start_info
start_info: .long 0
	.section .note.GNU-stack,"",@progbits
