package main

import (
	"context"

	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/provider"
	"github.com/hashicorp/terraform-plugin-framework/provider/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/types"
)

// settings is what Configure hands to the resource and the data source.
type settings struct {
	prefix string
}

type fwdemoProvider struct{}

type providerModel struct {
	Prefix types.String `tfsdk:"prefix"`
}

func newProvider() provider.Provider { return &fwdemoProvider{} }

func (p *fwdemoProvider) Metadata(_ context.Context, _ provider.MetadataRequest, resp *provider.MetadataResponse) {
	resp.TypeName = "fwdemo"
	resp.Version = "0.1.0"
}

func (p *fwdemoProvider) Schema(_ context.Context, _ provider.SchemaRequest, resp *provider.SchemaResponse) {
	resp.Schema = schema.Schema{
		Attributes: map[string]schema.Attribute{
			"prefix": schema.StringAttribute{
				Optional:    true,
				Description: "Put in front of every id and echo output.",
			},
		},
	}
}

func (p *fwdemoProvider) Configure(ctx context.Context, req provider.ConfigureRequest, resp *provider.ConfigureResponse) {
	var config providerModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &config)...)
	if resp.Diagnostics.HasError() {
		return
	}
	s := &settings{prefix: config.Prefix.ValueString()}
	resp.ResourceData = s
	resp.DataSourceData = s
}

func (p *fwdemoProvider) Resources(context.Context) []func() resource.Resource {
	return []func() resource.Resource{newItem}
}

func (p *fwdemoProvider) DataSources(context.Context) []func() datasource.DataSource {
	return []func() datasource.DataSource{newEcho}
}
