import json,sys,subprocess
def steps(p,ind=""):
    out=[]
    for s in p.get("steps",[]):
        ev=s.get("expected_verdicts",{})
        out.append(f"{ind}  {s['step']}. {s['when']}: "+", ".join(f"{o}({ev.get(o,'?')})" for o in s['options'])+f" [{s.get('intent')}]")
        out.append(f"{ind}     R: {s.get('reason','')[:700]}")
    return out
for f in sys.argv[1:]:
    d=json.loads(subprocess.run(["review/nelm.sh","assess",f,"--format","json"],capture_output=True,text=True).stdout)
    c=d["classification"]; p=d["plan"]
    print("#####",f, c.get("who_grade"),c.get("category"),c.get("frilling_type"))
    print(" PLAN",p["status"], p.get("pathway") or p.get("pathway_title",""))
    print("\n".join(steps(p)))
    for a in p.get("assumptions",[]): print("  ASSUME",a["field"],a.get("assumed"),"->",a.get("if_not","")[:200])
    for b in p.get("branches",[]):
        print("  BRANCH if",[ (x["field"],x["value"]) for x in b["if"]], b["status"])
        print("\n".join(steps(b,"    ")[:4]))
    for w in p.get("workup",[]): print("  WORKUP",w["fields"],w["order"][:100],"|",w["decides"][:100])
    for o in d["options"]:
        r=o["reasons"][0]["text"][:260] if o["reasons"] else ""
        conds=[x.get("requirement") for x in o.get("conditions",[])]
        print(f"  - {o['id']}: {o['verdict']} ({o.get('intent')}) {r}" + (f" COND:{conds}" if conds else ""))
    print()
